<?php
/**
 * vpsbridge for WHMCS - hooks.
 *
 * Module hook files are loaded for every module's events, so each hook first checks that the event
 * concerns a vpsbridge product. Hooks run inside WHMCS's own requests (checkout, cron, admin pages):
 * every one swallows all errors - a failing bridge must never break a WHMCS page.
 *
 * Hooks get no server credentials; the bridge reads the vpsbridge server record (tblservers).
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/Transport.php';
require_once __DIR__ . '/lib/Whmcs.php';

use WHMCS\Module\Server\Vpsbridge\Transport;
use WHMCS\Module\Server\Vpsbridge\Whmcs;

/** Hooks wait less than module calls: a checkout page must not hang on a slow service. */
const VPSBRIDGE_HOOK_TIMEOUT = 15;

function vpsbridge_hook_call($hook, array $extra, array $params = array())
{
    try {
        $payload = array('params' => Transport::cleanParams($params), 'product' => array(), 'extra' => $extra);
        return Transport::call(Whmcs::serverConfig(), 'hook', $hook, $payload, VPSBRIDGE_HOOK_TIMEOUT);
    } catch (\Throwable $e) {
        return array('ok' => false, 'data' => array(), 'error' => $e->getMessage());
    }
}

function vpsbridge_is_ours($vars)
{
    return isset($vars['params']['moduletype']) && $vars['params']['moduletype'] === 'vpsbridge';
}

/** Write the stock quantities a hook answer carries (null = unknown, left alone). */
function vpsbridge_apply_stock(array $result)
{
    try {
        if ($result['ok'] && isset($result['data']['stock'])) {
            Whmcs::writeStock($result['data']['stock']);
        }
    } catch (\Throwable $e) {
        // never break the page
    }
}

/**
 * After a create: accept the order once every vpsbridge service in it has a server (WHMCS 9 stops
 * its batch acceptance when the order leaves Pending), and refresh stock.
 */
add_hook('AfterModuleCreate', 1, function ($vars) {
    if (!vpsbridge_is_ours($vars)) {
        return;
    }
    try {
        $params = $vars['params'];
        $serviceId = isset($params['serviceid']) ? $params['serviceid'] : 0;
        $order = Whmcs::orderFacts($serviceId);
        $result = vpsbridge_hook_call('AfterModuleCreate', array(
            'order' => $order,
            'products' => Whmcs::stockProducts(),
        ), $params);
        vpsbridge_apply_stock($result);
        if ($result['ok'] && !empty($result['data']['accept_order']) && $order) {
            $accepted = localAPI('AcceptOrder', array('orderid' => $order['id'], 'autosetup' => false, 'sendemail' => true));
            if (!isset($accepted['result']) || $accepted['result'] !== 'success') {
                logActivity('vpsbridge: could not accept order #' . $order['id'] . ': '
                    . (isset($accepted['message']) ? $accepted['message'] : 'unknown error'));
            }
        }
    } catch (\Throwable $e) {
        // never break provisioning
    }
});

add_hook('AfterModuleTerminate', 1, function ($vars) {
    if (!vpsbridge_is_ours($vars)) {
        return;
    }
    vpsbridge_apply_stock(vpsbridge_hook_call('AfterModuleTerminate', array('products' => Whmcs::stockProducts()), $vars['params']));
});

add_hook('AfterCronJob', 5, function ($vars) {
    try {
        $products = Whmcs::stockProducts();
        if ($products) {
            vpsbridge_apply_stock(vpsbridge_hook_call('AfterCronJob', array('products' => $products)));
        }
    } catch (\Throwable $e) {
    }
});

add_hook('DailyCronJob', 1, function ($vars) {
    try {
        vpsbridge_apply_stock(vpsbridge_hook_call('DailyCronJob', array('products' => Whmcs::stockProducts())));
    } catch (\Throwable $e) {
    }
});

/**
 * A paid invoice: vpsbridge credits VirtFusion self-service credit for the invoices it raised for
 * that (and ignores every other invoice). The status comes from tblinvoices, not from the event.
 */
add_hook('InvoicePaid', 1, function ($vars) {
    try {
        $invoiceId = isset($vars['invoiceid']) ? (int) $vars['invoiceid'] : 0;
        if ($invoiceId <= 0) {
            return;
        }
        $invoice = \WHMCS\Database\Capsule::table('tblinvoices')->where('id', $invoiceId)->first();
        if (!$invoice) {
            return;
        }
        $result = vpsbridge_hook_call('InvoicePaid', array('invoice' => array(
            'id' => (int) $invoice->id,
            'userid' => (int) $invoice->userid,
            'status' => (string) $invoice->status,
        )));
        if (!$result['ok']) {
            logActivity('vpsbridge: invoice #' . $invoiceId . ' was paid but its self-service credit failed: '
                . $result['error']);
        }
    } catch (\Throwable $e) {
        // never break a payment, but leave a trace an operator can act on
        logActivity('vpsbridge: InvoicePaid hook failed: ' . $e->getMessage());
    }
});

/** The pid of a cart page, wherever this WHMCS version puts it. */
function vpsbridge_cart_pid($vars)
{
    if (!empty($vars['pid'])) {
        return (int) $vars['pid'];
    }
    if (!empty($vars['productid'])) {
        return (int) $vars['productid'];
    }
    if (!empty($vars['productinfo']['pid'])) {
        return (int) $vars['productinfo']['pid'];
    }
    return 0;
}

add_hook('ClientAreaPageCart', 1, function ($vars) {
    try {
        $pid = vpsbridge_cart_pid($vars);
        if ($pid > 0) {
            $products = Whmcs::stockProducts($pid);
            if ($products) {
                vpsbridge_apply_stock(vpsbridge_hook_call('ClientAreaPageCart', array('products' => $products)));
            }
        }
    } catch (\Throwable $e) {
    }
    return array();
});

/** Refuse checkout while a VPS in the cart has no operating system chosen. */
add_hook('ShoppingCartValidateCheckout', 1, function ($vars) {
    try {
        $cart = Whmcs::cartItems();
        if (!$cart) {
            return array();
        }
        $result = vpsbridge_hook_call('ShoppingCartValidateCheckout', array('cart' => $cart));
        if ($result['ok']) {
            return isset($result['data']['errors']) ? (array) $result['data']['errors'] : array();
        }
        // The service is unreachable: the same rule, checked locally, so an order without an OS
        // still cannot pass.
        $errors = array();
        foreach ($cart as $item) {
            $os = '';
            foreach ($item['customfields'] as $name => $value) {
                if (strcasecmp(trim(explode('|', $name)[0]), Whmcs::OS_FIELD) === 0) {
                    $os = trim($value);
                }
            }
            if ($os === '') {
                $errors[] = 'Please choose an operating system for ' . $item['name'] . '.';
            }
        }
        return $errors;
    } catch (\Throwable $e) {
        return array();
    }
});

/** "On this page" links on the product details page of a vpsbridge service (built locally). */
add_hook('ClientAreaPrimarySidebar', 1, function ($sidebar) {
    try {
        if (!isset($_GET['action']) || $_GET['action'] !== 'productdetails' || !is_object($sidebar)) {
            return;
        }
        $service = null;
        if (class_exists('Menu') && method_exists('Menu', 'context')) {
            $service = \Menu::context('service');
        }
        if (!$service || !isset($service->product) || $service->product->servertype !== 'vpsbridge') {
            return;
        }
        $panel = $sidebar->addChild('vpsbridge-on-this-page', array('label' => 'On this page', 'order' => 5));
        $links = array('vpsbridge-overview' => 'Server', 'vpsbridge-power' => 'Power', 'vpsbridge-network' => 'Network');
        $order = 0;
        foreach ($links as $anchor => $label) {
            $order += 10;
            $panel->addChild($anchor, array('label' => $label, 'uri' => '#' . $anchor, 'order' => $order));
        }
    } catch (\Throwable $e) {
    }
});

/**
 * The configure-product page of a vpsbridge product: OS gallery, SSH-key picker (saved key, pasted
 * key, or an Ed25519 key generated in the browser) and sliders for numeric configurable options.
 * The data comes from the service; the page is built by templates/js/order.js.
 */
add_hook('ClientAreaFooterOutput', 1, function ($vars) {
    try {
        if (isset($vars['templatefile']) && in_array($vars['templatefile'], array('upgrade', 'upgradeconfigoptions'), true)) {
            return vpsbridge_upgrade_page_output($vars);
        }
        if (!isset($vars['templatefile']) || $vars['templatefile'] !== 'configureproduct') {
            return '';
        }
        $pid = vpsbridge_cart_pid($vars);
        $product = $pid ? Whmcs::product($pid) : array();
        if (!$product || !isset($vars['productinfo']['module']) || $vars['productinfo']['module'] !== 'vpsbridge') {
            return '';
        }
        Whmcs::ensureCustomFields($pid);
        $clientId = isset($vars['loggedinuser']['id']) ? (int) $vars['loggedinuser']['id']
            : (isset($vars['clientsdetails']['id']) ? (int) $vars['clientsdetails']['id'] : 0);
        $params = array('pid' => $pid);
        for ($i = 1; $i <= Whmcs::SETTINGS; $i++) {
            $params['configoption' . $i] = $product['configoption' . $i];
        }
        $result = Transport::call(Whmcs::serverConfig(), 'hook', 'ClientAreaFooterOutput', array(
            'params' => $params,
            'product' => $product,
            'extra' => array('client_id' => $clientId),
        ), VPSBRIDGE_HOOK_TIMEOUT);
        $ids = Whmcs::customFieldIds($pid);
        $config = array(
            'osFieldId' => isset($ids[Whmcs::OS_FIELD]) ? $ids[Whmcs::OS_FIELD] : 0,
            'keyFieldId' => isset($ids[Whmcs::SSH_KEY_FIELD]) ? $ids[Whmcs::SSH_KEY_FIELD] : 0,
            'templates' => $result['ok'] && isset($result['data']['templates']) ? $result['data']['templates'] : array(),
            'sshKeys' => $result['ok'] && isset($result['data']['ssh_keys']) ? $result['data']['ssh_keys'] : array(),
            'sliders' => array('Memory', 'CPU Cores', 'Storage', 'Bandwidth', 'Inbound Network Speed', 'Outbound Network Speed'),
            'error' => $result['ok'] ? '' : 'The operating system list is unavailable right now.',
        );
        $json = json_encode($config, JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_INVALID_UTF8_SUBSTITUTE);
        $base = 'modules/servers/vpsbridge/templates';
        return '<link rel="stylesheet" href="' . $base . '/css/order.css">'
            . '<script type="application/json" id="vpsbridge-order-config">' . $json . '</script>'
            . '<script src="' . $base . '/js/order.js" defer></script>';
    } catch (\Throwable $e) {
        return '';
    }
});

/**
 * The upgrade page (upgrade.php?type=configoptions&id=N) of a vpsbridge service: disks are never
 * shrunk, so the System Disk / Additional Disk choices smaller than what the server has are
 * disabled and a warning is shown (vpsbridge decides which, from what the service was sold). The
 * package change refuses a shrink anyway; this keeps the client from paying for one first.
 */
function vpsbridge_upgrade_page_output($vars)
{
    try {
        $type = isset($vars['type']) ? $vars['type'] : (isset($_GET['type']) ? $_GET['type'] : '');
        if ($type !== 'configoptions') {
            return '';
        }
        $serviceId = isset($vars['id']) ? (int) $vars['id'] : (isset($_GET['id']) ? (int) $_GET['id'] : 0);
        $found = $serviceId > 0 ? Whmcs::upgradeOptions($serviceId) : null;
        if (!$found || !$found['options']) {
            return '';
        }
        $result = vpsbridge_hook_call(
            'UpgradeDiskChoices',
            array('options' => $found['options']),
            array('serviceid' => $serviceId, 'pid' => $found['pid'])
        );
        if (!$result['ok'] || empty($result['data']['options'])) {
            return '';
        }
        $rules = array();
        foreach ($result['data']['options'] as $option) {
            if (!empty($option['disabled'])) {
                $rules[] = array(
                    'id' => (int) $option['id'],
                    'disabled' => array_map('intval', $option['disabled']),
                    'warning' => (string) $option['warning'],
                );
            }
        }
        if (!$rules) {
            return '';
        }
        $json = json_encode($rules, JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_INVALID_UTF8_SUBSTITUTE);
        return '<script type="application/json" id="vpsbridge-upgrade-disks">' . $json . '</script>'
            . '<script src="modules/servers/vpsbridge/templates/js/upgrade.js" defer></script>';
    } catch (\Throwable $e) {
        return '';
    }
}
