<?php
/**
 * vpsbridge for WHMCS - the signed transport to the vpsbridge service.
 *
 * Every module function, hook and client-area action ends up here: the WHMCS parameters are made
 * JSON-safe (objects such as the Eloquent "model" removed, secrets dropped), signed with the shared
 * secret (HMAC-SHA256 over timestamp, nonce, method, path and body) and POSTed. The caller always
 * gets an array back - ['ok' => bool, 'data' => array, 'error' => string] - never an exception and
 * never a stack trace, within a bounded time even when the service is down.
 *
 * PHP 7.4 compatible on purpose (WHMCS 8 still runs on it).
 */

namespace WHMCS\Module\Server\Vpsbridge;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Transport
{
    const MODULE = 'vpsbridge';
    const CONNECT_TIMEOUT = 5;
    const TIMEOUT = 45;

    /** Keys of $params never sent to the service. */
    private static $dropKeys = array('model', 'serverpassword', 'serveraccesshash', 'serverusername');

    /**
     * Make WHMCS params JSON-safe: drop objects/resources at any depth and the listed keys.
     * The service password is kept only when $keepPassword (ChangePassword).
     */
    public static function cleanParams($params, $keepPassword = false)
    {
        if (!is_array($params)) {
            return array();
        }
        $out = array();
        foreach ($params as $key => $value) {
            if (in_array($key, self::$dropKeys, true)) {
                continue;
            }
            if ($key === 'password' && !$keepPassword) {
                continue;
            }
            if (is_object($value) || is_resource($value)) {
                continue;
            }
            if (is_array($value)) {
                $value = self::cleanParams($value, true);
            }
            $out[$key] = $value;
        }
        return $out;
    }

    /** Base URL from a server record: "https://host[:port][/prefix]" or host + secure + port. */
    public static function baseUrl($hostname, $secure, $port)
    {
        $hostname = trim((string) $hostname);
        if ($hostname === '') {
            return '';
        }
        if (strpos($hostname, '://') !== false) {
            return rtrim($hostname, '/');
        }
        $scheme = ($secure === false || $secure === '' || $secure === '0' || $secure === 0) ? 'http' : 'https';
        $url = $scheme . '://' . $hostname;
        if ($port !== null && $port !== '' && (int) $port > 0) {
            $url .= ':' . (int) $port;
        }
        return $url;
    }

    /**
     * Connection settings from module params (functions that get them) - the server record.
     *
     * @return array ['url' => string, 'secret' => string]
     */
    public static function configFromParams(array $params)
    {
        $secure = isset($params['serversecure']) ? $params['serversecure'] : true;
        $port = isset($params['serverport']) ? $params['serverport'] : '';
        return array(
            'url' => self::baseUrl(isset($params['serverhostname']) && $params['serverhostname'] !== ''
                ? $params['serverhostname'] : (isset($params['serverip']) ? $params['serverip'] : ''), $secure, $port),
            'secret' => isset($params['serveraccesshash']) ? trim((string) $params['serveraccesshash']) : '',
        );
    }

    /**
     * @return array ['ok' => bool, 'data' => array, 'error' => string]
     */
    public static function call(array $config, $kind, $name, array $payload, $timeout = null)
    {
        $url = isset($config['url']) ? $config['url'] : '';
        $secret = isset($config['secret']) ? $config['secret'] : '';
        if ($url === '') {
            return self::failure('vpsbridge is not configured: set the service URL as the hostname of the vpsbridge server in WHMCS');
        }
        if ($secret === '') {
            return self::failure('vpsbridge is not configured: set the shared secret as the access hash of the vpsbridge server in WHMCS');
        }
        $endpoint = $url . '/bridge/v1/' . $kind . '/' . rawurlencode($name);
        $path = (string) parse_url($endpoint, PHP_URL_PATH);
        $body = json_encode($payload, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR);
        if ($body === false) {
            return self::failure('could not encode the request for vpsbridge');
        }
        $timestamp = (string) time();
        $nonce = bin2hex(random_bytes(16));
        $signature = hash_hmac('sha256', $timestamp . "\n" . $nonce . "\nPOST\n" . $path . "\n" . $body, $secret);
        $headers = array(
            'Content-Type: application/json',
            'Accept: application/json',
            'User-Agent: vpsbridge-whmcs/1.0',
            'X-Bridge-Timestamp: ' . $timestamp,
            'X-Bridge-Nonce: ' . $nonce,
            'X-Bridge-Signature: ' . $signature,
        );
        $ch = curl_init($endpoint);
        curl_setopt_array($ch, array(
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $body,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_CONNECTTIMEOUT => self::CONNECT_TIMEOUT,
            CURLOPT_TIMEOUT => $timeout !== null ? (int) $timeout : self::TIMEOUT,
            CURLOPT_SSL_VERIFYPEER => true,
            CURLOPT_SSL_VERIFYHOST => 2,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_NOSIGNAL => true,
        ));
        $raw = curl_exec($ch);
        $errno = curl_errno($ch);
        $error = curl_error($ch);
        $status = (int) curl_getinfo($ch, CURLINFO_HTTP_CODE);
        curl_close($ch);

        if ($raw === false || $errno !== 0) {
            $result = self::failure('vpsbridge is unreachable at ' . $url . ': ' . ($error !== '' ? $error : 'no answer'));
        } else {
            $decoded = json_decode((string) $raw, true);
            if (!is_array($decoded)) {
                $result = self::failure('vpsbridge answered HTTP ' . $status . ' with an unreadable body; check the service URL');
            } elseif ($status >= 200 && $status < 300) {
                if (isset($decoded['ok']) && $decoded['ok'] === false) {
                    $message = isset($decoded['error']) ? (string) $decoded['error'] : 'vpsbridge refused the request';
                    $result = array('ok' => false, 'data' => $decoded, 'error' => $message);
                } else {
                    $result = array('ok' => true, 'data' => $decoded, 'error' => '');
                }
            } else {
                $message = 'vpsbridge answered HTTP ' . $status;
                if (isset($decoded['error']['message'])) {
                    $message = (string) $decoded['error']['message'];
                    if (!empty($decoded['error']['request_id']) && $status >= 500) {
                        $message .= ' (request id ' . $decoded['error']['request_id'] . ')';
                    }
                }
                $result = array('ok' => false, 'data' => $decoded, 'error' => $message);
            }
        }
        self::log($kind . ':' . $name, $payload, $raw === false ? $error : (string) $raw, $result, $secret);
        return $result;
    }

    private static function failure($message)
    {
        return array('ok' => false, 'data' => array(), 'error' => $message);
    }

    /** Module log entry (only stored when WHMCS module logging is on); secrets are masked. */
    private static function log($action, $request, $response, $processed, $secret)
    {
        if (!function_exists('logModuleCall')) {
            return;
        }
        $mask = array();
        if ($secret !== '') {
            $mask[] = $secret;
        }
        if (isset($request['params']['password']) && $request['params']['password'] !== '') {
            $mask[] = (string) $request['params']['password'];
        }
        try {
            logModuleCall(self::MODULE, $action, $request, $response, $processed, $mask);
        } catch (\Throwable $e) {
            // Logging must never break provisioning.
        }
    }
}
