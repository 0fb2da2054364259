<?php
/**
 * A stand-in for the parts of WHMCS the vpsbridge module uses, on real tables in MariaDB.
 *
 * Reads one JSON command on stdin, prints one JSON answer on stdout. Commands:
 *   {"cmd": "setup"}                                   create the WHMCS tables (real names and columns)
 *   {"cmd": "sql", "sql": "...", "bindings": [...]}    run a query, answer its rows (test set-up/assertions)
 *   {"cmd": "module", "function": "CreateAccount", "params": {...}, "post": {...}, "session": {...}}
 *   {"cmd": "hook", "hook": "AfterModuleCreate", "vars": {...}, "session": {...}}
 *   {"cmd": "clientarea", "params": {...}}             ClientArea, its overview template rendered with Smarty 3
 * Every answer carries the localAPI calls the module made (AcceptOrder ...) and what it logged.
 * Connection: env HARNESS_DB (database name), MariaDB at 127.0.0.1:3306 as root.
 */

define('WHMCS', true);

require_once '/usr/share/php/Illuminate/Database/autoload.php';

use Illuminate\Database\Capsule\Manager;

class_alias(Manager::class, 'WHMCS\Database\Capsule');

$capsule = new Manager();
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

$GLOBALS['harness'] = array('hooks' => array(), 'localapi' => array(), 'modulelog' => array(), 'activity' => array());

function add_hook($name, $priority, $fn)
{
    $GLOBALS['harness']['hooks'][$name][] = array($priority, $fn);
}

function run_hook($name, $vars)
{
    $hooks = isset($GLOBALS['harness']['hooks'][$name]) ? $GLOBALS['harness']['hooks'][$name] : array();
    usort($hooks, function ($a, $b) { return $a[0] - $b[0]; });
    $results = array();
    foreach ($hooks as $hook) {
        $results[] = call_user_func($hook[1], $vars);
    }
    return $results;
}

function logModuleCall($module, $action, $request, $response, $processed, $replace = array())
{
    $text = json_encode(array($action, $request, $response), JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE);
    foreach ($replace as $secret) {
        $text = str_replace((string) $secret, '***', $text);
    }
    $GLOBALS['harness']['modulelog'][] = $text;
}

function logActivity($message)
{
    $GLOBALS['harness']['activity'][] = $message;
}

function decrypt($value)
{
    return $value;
}

function encrypt($value)
{
    return $value;
}

/** WHMCS's internal API, for the actions the module uses; answers the way WHMCS documents. */
function localAPI($action, $values, $admin = null)
{
    $GLOBALS['harness']['localapi'][] = array('action' => $action, 'values' => $values);
    if ($action === 'AcceptOrder') {
        $order = WHMCS\Database\Capsule::table('tblorders')->where('id', (int) $values['orderid'])->first();
        if (!$order || $order->status !== 'Pending') {
            return array('result' => 'error', 'message' => 'Order ID not found or Status not Pending');
        }
        WHMCS\Database\Capsule::table('tblorders')->where('id', (int) $values['orderid'])->update(array('status' => 'Active'));
        return array('result' => 'success', 'orderid' => (int) $values['orderid']);
    }
    return array('result' => 'error', 'message' => 'action not emulated: ' . $action);
}

function harness_setup()
{
    $schema = WHMCS\Database\Capsule::schema();
    $schema->create('tblservers', function ($t) {
        $t->increments('id');
        $t->string('name')->default('');
        $t->string('ipaddress')->default('');
        $t->string('hostname')->default('');
        $t->string('port')->default('');
        $t->string('type')->default('');
        $t->string('username')->default('');
        $t->text('password')->nullable();
        $t->text('accesshash')->nullable();
        $t->string('secure')->default('on');
        $t->tinyInteger('disabled')->default(0);
    });
    $schema->create('tblproducts', function ($t) {
        $t->increments('id');
        $t->string('type')->default('server');
        $t->integer('gid')->default(1);
        $t->string('name')->default('');
        $t->string('servertype')->default('');
        for ($i = 1; $i <= 24; $i++) {
            $t->text('configoption' . $i)->nullable();
        }
        $t->tinyInteger('stockcontrol')->default(0);
        $t->integer('qty')->default(0);
    });
    $schema->create('tblorders', function ($t) {
        $t->increments('id');
        $t->integer('userid')->default(0);
        $t->string('status')->default('Pending');
    });
    $schema->create('tblhosting', function ($t) {
        $t->increments('id');
        $t->integer('userid')->default(0);
        $t->integer('orderid')->default(0);
        $t->integer('packageid')->default(0);
        $t->integer('server')->default(0);
        $t->text('domain')->nullable();
        $t->text('username')->nullable();
        $t->text('password')->nullable();
        $t->text('dedicatedip')->nullable();
        $t->text('assignedips')->nullable();
        $t->string('domainstatus')->default('Pending');
        $t->integer('diskusage')->default(0);
        $t->integer('disklimit')->default(0);
        $t->integer('bwusage')->default(0);
        $t->integer('bwlimit')->default(0);
        $t->dateTime('lastupdate')->nullable();
    });
    $schema->create('tblinvoices', function ($t) {
        $t->increments('id');
        $t->integer('userid')->default(0);
        $t->string('status')->default('Unpaid');
        $t->decimal('total', 16, 2)->default(0);
    });
    $schema->create('tblcustomfields', function ($t) {
        $t->increments('id');
        $t->string('type')->default('');
        $t->integer('relid')->default(0);
        $t->text('fieldname');
        $t->string('fieldtype')->default('text');
        $t->text('description')->nullable();
        $t->text('fieldoptions')->nullable();
        $t->text('regexpr')->nullable();
        $t->string('adminonly')->default('');
        $t->string('required')->default('');
        $t->string('showorder')->default('');
        $t->string('showinvoice')->default('');
        $t->integer('sortorder')->default(0);
    });
    $schema->create('tblcustomfieldsvalues', function ($t) {
        $t->increments('id');
        $t->integer('fieldid');
        $t->integer('relid');
        $t->text('value')->nullable();
    });
    $schema->create('tblproductconfigoptions', function ($t) {
        $t->increments('id');
        $t->integer('gid')->default(0);
        $t->text('optionname');
        $t->string('optiontype')->default('1');
    });
    $schema->create('tblproductconfigoptionssub', function ($t) {
        $t->increments('id');
        $t->integer('configid');
        $t->text('optionname');
        $t->tinyInteger('hidden')->default(0);
    });
    $schema->create('tblproductconfiglinks', function ($t) {
        $t->increments('id');
        $t->integer('gid');
        $t->integer('pid');
    });
    $schema->create('tbladmins', function ($t) {
        $t->increments('id');
        $t->string('username')->default('');
    });
    return array('ok' => true);
}

$input = json_decode(stream_get_contents(STDIN), true);
if (!is_array($input)) {
    fwrite(STDERR, "harness: no JSON command on stdin\n");
    exit(2);
}
$answer = array();
ob_start();
try {
    switch ($input['cmd']) {
        case 'setup':
            $answer['result'] = harness_setup();
            break;
        case 'sql':
            $sql = $input['sql'];
            $bindings = isset($input['bindings']) ? $input['bindings'] : array();
            if (preg_match('/^\s*select/i', $sql)) {
                $answer['result'] = WHMCS\Database\Capsule::select($sql, $bindings);
            } else {
                $answer['result'] = WHMCS\Database\Capsule::affectingStatement($sql, $bindings);
            }
            break;
        case 'module':
            require_once getenv('HARNESS_MODULE_DIR') . '/vpsbridge.php';
            $_POST = isset($input['post']) ? $input['post'] : array();
            if (isset($input['session'])) {
                $_SESSION = $input['session'];
            }
            $fn = 'vpsbridge_' . $input['function'];
            $params = isset($input['params']) ? $input['params'] : array();
            // WHMCS passes the service as an Eloquent model; the bridge must strip it.
            $params['model'] = new stdClass();
            $started = microtime(true);
            $answer['result'] = in_array($input['function'], array('MetaData', 'ConfigOptions', 'AdminCustomButtonArray', 'ClientAreaCustomButtonArray'), true)
                ? $fn() : $fn($params);
            $answer['seconds'] = microtime(true) - $started;
            break;
        case 'clientarea':
            // What WHMCS does on the product details page: call ClientArea, then render the
            // template it names from the module folder with the variables it returns.
            require_once getenv('HARNESS_MODULE_DIR') . '/vpsbridge.php';
            require_once '/usr/share/php/smarty3/Smarty.class.php';
            $params = isset($input['params']) ? $input['params'] : array();
            $params['model'] = new stdClass();
            $area = vpsbridge_ClientArea($params);
            $smarty = new Smarty();
            $smarty->setCompileDir(sys_get_temp_dir() . '/vpsbridge-harness-smarty-' . getmypid());
            $smarty->assign($area['templateVariables']);
            $answer['result'] = $area;
            $answer['html'] = $smarty->fetch(getenv('HARNESS_MODULE_DIR') . '/' . $area['tabOverviewModuleOutputTemplate']);
            break;
        case 'hook':
            require_once getenv('HARNESS_MODULE_DIR') . '/hooks.php';
            if (isset($input['session'])) {
                $_SESSION = $input['session'];
            }
            $answer['result'] = run_hook($input['hook'], isset($input['vars']) ? $input['vars'] : array());
            break;
        default:
            throw new Exception('unknown command ' . $input['cmd']);
    }
} catch (Throwable $e) {
    $answer['exception'] = get_class($e) . ': ' . $e->getMessage();
}
$answer['output'] = ob_get_clean();
$answer['localapi'] = $GLOBALS['harness']['localapi'];
$answer['modulelog'] = $GLOBALS['harness']['modulelog'];
$answer['activity'] = $GLOBALS['harness']['activity'];
echo json_encode($answer, JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE);
