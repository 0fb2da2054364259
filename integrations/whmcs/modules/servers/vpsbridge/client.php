<?php
/**
 * vpsbridge for WHMCS - same-origin client-area proxy.
 *
 * The client area's JavaScript calls this file on the WHMCS host (so the browser never talks to
 * vpsbridge directly and no CORS is needed). It checks the WHMCS client session, that the service
 * belongs to that client and is a vpsbridge service, that state-changing calls are POSTs from the
 * same origin, and then forwards the action signed. Answers are JSON: {"ok": true, ...} or
 * {"ok": false, "error": "..."} with a matching HTTP status.
 */

use WHMCS\ClientArea;
use WHMCS\Database\Capsule;
use WHMCS\Module\Server\Vpsbridge\Transport;
use WHMCS\Module\Server\Vpsbridge\Whmcs;

define('CLIENTAREA', true);

$root = dirname(__DIR__, 3);
require $root . '/init.php';
require_once __DIR__ . '/lib/Transport.php';
require_once __DIR__ . '/lib/Whmcs.php';

/** Actions the proxy forwards, and whether they change anything (POST + same origin required). */
$actions = array('status' => false, 'portal' => true, 'panel' => true, 'power' => true, 'credit' => true);

function vpsbridge_client_reply($status, array $body)
{
    http_response_code($status);
    header('Content-Type: application/json; charset=utf-8');
    header('Cache-Control: no-store');
    header('X-Content-Type-Options: nosniff');
    echo json_encode($body, JSON_UNESCAPED_SLASHES);
    exit;
}

/** True when Origin (or, failing that, Referer) names this WHMCS host. */
function vpsbridge_same_origin()
{
    $host = isset($_SERVER['HTTP_HOST']) ? strtolower($_SERVER['HTTP_HOST']) : '';
    foreach (array('HTTP_ORIGIN', 'HTTP_REFERER') as $header) {
        if (!empty($_SERVER[$header])) {
            $parts = parse_url($_SERVER[$header]);
            if (!$parts || empty($parts['host'])) {
                return false;
            }
            $origin = strtolower($parts['host']) . (isset($parts['port']) ? ':' . $parts['port'] : '');
            return $origin === $host || strtolower($parts['host']) === $host;
        }
    }
    return false;
}

try {
    $ca = new ClientArea();
    $ca->initPage();
    $clientId = (int) $ca->getUserID();
    if ($clientId <= 0) {
        vpsbridge_client_reply(401, array('ok' => false, 'error' => 'Please log in.'));
    }
    $action = isset($_REQUEST['action']) ? (string) $_REQUEST['action'] : '';
    if (!isset($actions[$action])) {
        vpsbridge_client_reply(404, array('ok' => false, 'error' => 'Unknown action.'));
    }
    if ($actions[$action] && ($_SERVER['REQUEST_METHOD'] !== 'POST' || !vpsbridge_same_origin())) {
        vpsbridge_client_reply(403, array('ok' => false, 'error' => 'This action must be sent from this site.'));
    }
    $serviceId = isset($_REQUEST['serviceid']) ? (int) $_REQUEST['serviceid'] : 0;
    $service = Capsule::table('tblhosting')
        ->join('tblproducts', 'tblproducts.id', '=', 'tblhosting.packageid')
        ->where('tblhosting.id', $serviceId)
        ->where('tblhosting.userid', $clientId)
        ->where('tblproducts.servertype', 'vpsbridge')
        ->select('tblhosting.id', 'tblhosting.packageid', 'tblhosting.domainstatus')
        ->first();
    if (!$service) {
        vpsbridge_client_reply(404, array('ok' => false, 'error' => 'No such service.'));
    }
    $extra = array();
    if ($action === 'power') {
        $extra['action'] = isset($_POST['power']) ? (string) $_POST['power'] : '';
    }
    if ($action === 'credit') {
        $extra['amount'] = isset($_POST['amount']) ? (string) $_POST['amount'] : '';
    }
    $result = Transport::call(Whmcs::serverConfig(), 'client', $action, array(
        'params' => array('serviceid' => (int) $service->id, 'userid' => $clientId, 'pid' => (int) $service->packageid),
        'product' => array(),
        'extra' => $extra,
    ), 20);
    if (!$result['ok']) {
        vpsbridge_client_reply(502, array('ok' => false, 'error' => $result['error']));
    }
    // A plain form button ("Open server panel") asks to be sent on instead of getting JSON.
    $target = isset($result['data']['redirect']) ? (string) $result['data']['redirect'] : '';
    if (!empty($_POST['go']) && preg_match('#^https?://#i', $target)) {
        header('Cache-Control: no-store');
        header('Location: ' . $target, true, 303);
        exit;
    }
    // Without JavaScript the "Add credit" form posts here too: show the client the invoice to pay.
    if (!empty($_POST['go']) && !empty($result['data']['invoice_id'])) {
        header('Cache-Control: no-store');
        header('Location: ../../../viewinvoice.php?id=' . (int) $result['data']['invoice_id'], true, 303);
        exit;
    }
    vpsbridge_client_reply(200, $result['data']);
} catch (\Throwable $e) {
    vpsbridge_client_reply(500, array('ok' => false, 'error' => 'The server panel is unavailable right now.'));
}
