<?php
/**
 * A stand-in for WHMCS's init.php, for pages served by `php -S` from a throw-away WHMCS root
 * (tests/e2e/whmcs_site.py): the module's client.php and the order page require it.
 *
 * It gives them what WHMCS would: the WHMCS constant, Capsule on the harness's MariaDB tables
 * (env HARNESS_DB), and a client-area session. The signed-in client is the HARNESS_UID cookie -
 * the test stands in for WHMCS's login form, which is not what is being tested.
 */

namespace {
    if (!defined('WHMCS')) {
        define('WHMCS', true);
    }
    require_once '/usr/share/php/Illuminate/Database/autoload.php';

    if (!class_exists('WHMCS\Database\Capsule')) {
        class_alias(\Illuminate\Database\Capsule\Manager::class, 'WHMCS\Database\Capsule');
    }
    $capsule = new \Illuminate\Database\Capsule\Manager();
    $capsule->addConnection(array(
        'driver' => 'mysql',
        'host' => getenv('HARNESS_DB_HOST') ?: '127.0.0.1',
        'port' => getenv('HARNESS_DB_PORT') ?: '3306',
        'database' => getenv('HARNESS_DB'),
        'username' => 'root',
        'password' => '',
        'charset' => 'utf8mb4',
        'collation' => 'utf8mb4_unicode_ci',
    ));
    $capsule->setAsGlobal();

    if (!function_exists('decrypt')) {
        function decrypt($value)
        {
            return $value;
        }
    }
    if (!function_exists('logModuleCall')) {
        function logModuleCall($module, $action, $request, $response, $processed, $replace = array())
        {
        }
    }
    if (!function_exists('logActivity')) {
        function logActivity($message)
        {
        }
    }
}

namespace WHMCS {
    /** The client area page object client.php uses: who is signed in. */
    class ClientArea
    {
        public function initPage()
        {
        }

        public function getUserID()
        {
            return isset($_COOKIE['HARNESS_UID']) ? (int) $_COOKIE['HARNESS_UID'] : 0;
        }
    }
}
