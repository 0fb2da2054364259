<?php
/**
 * vpsbridge for WHMCS - provisioning module.
 *
 * A thin bridge: every function forwards WHMCS's parameters, signed, to the vpsbridge service and
 * maps the answer onto WHMCS's return conventions. No business logic lives here; the service
 * decides, provisions and reports back. One module serves every platform vpsbridge drives - the
 * product's "Platform" setting picks one.
 *
 * Server record (System Settings > Servers, type "vpsbridge"):
 *   Hostname    = the service URL, e.g. https://vpsbridge.example.com
 *   Access Hash = the shared secret (VPSBRIDGE_BRIDGE_SECRET on the service)
 *
 * PHP 7.4 compatible on purpose (WHMCS 8 still runs on it).
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/Transport.php';
require_once __DIR__ . '/lib/Whmcs.php';

use WHMCS\Module\Server\Vpsbridge\Transport;
use WHMCS\Module\Server\Vpsbridge\Whmcs;

/** Forward a module function; returns the Transport result array. */
function vpsbridge_forward($function, array $params, array $extra = array(), $keepPassword = false)
{
    try {
        $pid = isset($params['pid']) ? $params['pid'] : (isset($params['packageid']) ? $params['packageid'] : 0);
        $product = $pid ? Whmcs::product($pid) : array();
        if ($pid) {
            Whmcs::ensureCustomFields($pid);
        }
        $payload = array(
            'params' => Transport::cleanParams($params, $keepPassword),
            'product' => $product,
            'extra' => $extra,
        );
        $config = Transport::configFromParams($params);
        if ($config['url'] === '' || $config['secret'] === '') {
            $config = Whmcs::serverConfig();
        }
        return Transport::call($config, 'module', $function, $payload);
    } catch (\Throwable $e) {
        return array('ok' => false, 'data' => array(), 'error' => 'vpsbridge module error: ' . $e->getMessage());
    }
}

/** 'success' or the readable error, as WHMCS wants from lifecycle functions. */
function vpsbridge_result(array $result)
{
    return $result['ok'] ? 'success' : $result['error'];
}

function vpsbridge_MetaData()
{
    return array(
        'DisplayName' => 'vpsbridge',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultSSLPort' => '443',
        'DefaultNonSSLPort' => '80',
        'ServiceSingleSignOnLabel' => 'Open control panel',
        'AdminSingleSignOnLabel' => 'Open vpsbridge console',
        'ListAccountsUniqueIdentifierDisplayName' => 'Service',
        'ListAccountsUniqueIdentifierField' => 'domain',
        'ListAccountsProductField' => 'configoption3',
    );
}

/**
 * Module settings. The ORDER IS A CONTRACT (configoptionN): append only, never reorder.
 * Choices are loaded from the service by the Loader functions below.
 */
function vpsbridge_ConfigOptions()
{
    return array(
        'platform' => array('FriendlyName' => 'Platform', 'Type' => 'text', 'Size' => '25',
            'Loader' => 'vpsbridge_LoadPlatforms', 'SimpleMode' => true,
            'Description' => 'The vpsbridge platform servers of this product run on'),
        'group' => array('FriendlyName' => 'Hypervisor group', 'Type' => 'text', 'Size' => '10',
            'Loader' => 'vpsbridge_LoadGroups', 'SimpleMode' => true,
            'Description' => 'Where servers are placed (VirtFusion hypervisor group)'),
        'package' => array('FriendlyName' => 'Package', 'Type' => 'text', 'Size' => '10',
            'Loader' => 'vpsbridge_LoadPackages', 'SimpleMode' => true,
            'Description' => 'The platform package (plan) of this product'),
        'default_ipv4' => array('FriendlyName' => 'Default IPv4 addresses', 'Type' => 'dropdown',
            'Options' => '1,2,3,4,5,6,7,8,9,10', 'Default' => '1', 'SimpleMode' => true),
        'self_service_mode' => array('FriendlyName' => 'Self-service mode', 'Type' => 'dropdown',
            'Options' => array('0' => 'Disabled', '1' => 'Hourly', '2' => 'Resource packs', '3' => 'Both'),
            'Default' => '0'),
        'topoff_threshold' => array('FriendlyName' => 'Auto top-off threshold', 'Type' => 'text', 'Size' => '10',
            'Default' => '0', 'Description' => 'Top up self-service credit below this balance (0 = off)'),
        'topoff_amount' => array('FriendlyName' => 'Auto top-off amount', 'Type' => 'text', 'Size' => '10',
            'Default' => '0', 'Description' => 'Credit added (and invoiced) per top-off'),
        'stock_buffer_pct' => array('FriendlyName' => 'Stock safety buffer %', 'Type' => 'text', 'Size' => '5',
            'Default' => '10', 'Description' => 'Capacity kept free when computing stock (0-100)'),
        'terminate_delay_minutes' => array('FriendlyName' => 'Termination delay (minutes)', 'Type' => 'text',
            'Size' => '6', 'Default' => '', 'Description' => 'Grace period before a terminated server is deleted (blank = platform default)'),
    );
}

/** Loader helper: throw so WHMCS shows the reason instead of an empty dropdown. */
function vpsbridge_loadChoices(array $params, $key)
{
    $result = vpsbridge_forward('ConfigOptions', $params);
    if (!$result['ok']) {
        throw new \Exception($result['error']);
    }
    $choices = isset($result['data'][$key]) && is_array($result['data'][$key]) ? $result['data'][$key] : array();
    $out = array();
    foreach ($choices as $value => $label) {
        $out[(string) $value] = (string) $label;
    }
    return $out;
}

function vpsbridge_LoadPlatforms(array $params)
{
    return vpsbridge_loadChoices($params, 'platforms');
}

function vpsbridge_LoadGroups(array $params)
{
    return vpsbridge_loadChoices($params, 'groups');
}

function vpsbridge_LoadPackages(array $params)
{
    return vpsbridge_loadChoices($params, 'packages');
}

function vpsbridge_TestConnection(array $params)
{
    $result = vpsbridge_forward('TestConnection', $params);
    return array('success' => $result['ok'], 'error' => $result['ok'] ? '' : $result['error']);
}

function vpsbridge_CreateAccount(array $params)
{
    return vpsbridge_result(vpsbridge_forward('CreateAccount', $params));
}

function vpsbridge_SuspendAccount(array $params)
{
    return vpsbridge_result(vpsbridge_forward('SuspendAccount', $params));
}

function vpsbridge_UnsuspendAccount(array $params)
{
    return vpsbridge_result(vpsbridge_forward('UnsuspendAccount', $params));
}

function vpsbridge_TerminateAccount(array $params)
{
    return vpsbridge_result(vpsbridge_forward('TerminateAccount', $params));
}

function vpsbridge_ChangePackage(array $params)
{
    return vpsbridge_result(vpsbridge_forward('ChangePackage', $params));
}

function vpsbridge_ChangePassword(array $params)
{
    return vpsbridge_result(vpsbridge_forward('ChangePassword', $params, array(), true));
}

function vpsbridge_Renew(array $params)
{
    return vpsbridge_result(vpsbridge_forward('Renew', $params));
}

/** Daily, once per server: the service returns usage per service id; written into tblhosting (MB). */
function vpsbridge_UsageUpdate(array $params)
{
    $result = vpsbridge_forward('UsageUpdate', $params);
    if (!$result['ok']) {
        return $result['error'];
    }
    try {
        $rows = isset($result['data']['services']) ? $result['data']['services'] : array();
        Whmcs::writeUsage(isset($params['serverid']) ? $params['serverid'] : 0, $rows);
    } catch (\Throwable $e) {
        return 'vpsbridge could not store usage: ' . $e->getMessage();
    }
    return 'success';
}

function vpsbridge_AdminCustomButtonArray()
{
    return array(
        'Update Server Object' => 'updateServerObject',
        'Validate Server Config' => 'validateConfig',
        'Boot' => 'boot',
        'Reboot' => 'reboot',
        'Shut Down' => 'shutdown',
        'Power Off' => 'poweroff',
    );
}

function vpsbridge_ClientAreaCustomButtonArray()
{
    return array(
        'Boot' => 'boot',
        'Reboot' => 'reboot',
        'Shut Down' => 'shutdown',
        'Power Off' => 'poweroff',
    );
}

function vpsbridge_updateServerObject(array $params)
{
    return vpsbridge_result(vpsbridge_forward('updateServerObject', $params));
}

function vpsbridge_validateConfig(array $params)
{
    return vpsbridge_result(vpsbridge_forward('validateConfig', $params));
}

function vpsbridge_boot(array $params)
{
    return vpsbridge_result(vpsbridge_forward('boot', $params));
}

function vpsbridge_reboot(array $params)
{
    return vpsbridge_result(vpsbridge_forward('reboot', $params));
}

function vpsbridge_shutdown(array $params)
{
    return vpsbridge_result(vpsbridge_forward('shutdown', $params));
}

function vpsbridge_poweroff(array $params)
{
    return vpsbridge_result(vpsbridge_forward('poweroff', $params));
}

function vpsbridge_h($value)
{
    return htmlspecialchars((string) $value, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

/** Admin service tab: editable server id and the server as the platform last described it. */
function vpsbridge_AdminServicesTabFields(array $params)
{
    $result = vpsbridge_forward('AdminServicesTabFields', $params);
    if (!$result['ok']) {
        return array('vpsbridge' => '<span class="label label-danger">' . vpsbridge_h($result['error']) . '</span>');
    }
    $data = $result['data'];
    $serverId = isset($data['server_id']) ? $data['server_id'] : '';
    $json = isset($data['server']) ? json_encode($data['server'], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) : '{}';
    $fields = array(
        'Server ID' => '<input type="text" name="vpsbridge_server_id" size="12" value="' . vpsbridge_h($serverId)
            . '"> <small>the platform\'s server id; blank unlinks the service</small>',
        'Status' => vpsbridge_h(isset($data['status']) ? $data['status'] : ''),
    );
    if (!empty($data['last_error'])) {
        $fields['Last error'] = '<span class="text-danger">' . vpsbridge_h($data['last_error']) . '</span>';
    }
    $fields['Server JSON'] = '<pre style="max-height:320px;overflow:auto">' . vpsbridge_h($json) . '</pre>';
    return $fields;
}

function vpsbridge_AdminServicesTabFieldsSave(array $params)
{
    if (!isset($_POST['vpsbridge_server_id'])) {
        return;
    }
    vpsbridge_forward('AdminServicesTabFieldsSave', $params, array('server_id' => trim((string) $_POST['vpsbridge_server_id'])));
}

function vpsbridge_sso(array $params, $function, array $extra = array())
{
    $result = vpsbridge_forward($function, $params, $extra);
    if (!$result['ok'] || empty($result['data']['redirect'])) {
        return array('success' => false, 'errorMsg' => $result['ok'] ? 'no panel link available' : $result['error']);
    }
    return array('success' => true, 'redirectTo' => (string) $result['data']['redirect']);
}

/** The client's sign-on button: our client portal (a one-time link). The platform's own panel is
 *  the separate "Open server panel" action of client.php. */
function vpsbridge_ServiceSingleSignOn(array $params)
{
    return vpsbridge_sso($params, 'ServiceSingleSignOn');
}

/** Staff: the vpsbridge operator console, as the operator account named like this WHMCS admin. */
function vpsbridge_AdminSingleSignOn(array $params)
{
    return vpsbridge_sso($params, 'AdminSingleSignOn', array('admin_username' => Whmcs::adminUsername()));
}

function vpsbridge_ClientArea(array $params)
{
    $result = vpsbridge_forward('ClientArea', $params);
    $vars = $result['ok'] && isset($result['data']['vars']) && is_array($result['data']['vars']) ? $result['data']['vars'] : array();
    return array(
        'tabOverviewModuleOutputTemplate' => 'templates/overview.tpl',
        'templateVariables' => array(
            'vpsbridge' => $vars,
            'vpsbridgeError' => $result['ok'] ? '' : $result['error'],
            'vpsbridgeServiceId' => isset($params['serviceid']) ? (int) $params['serviceid'] : 0,
            // "Add credit" is offered when the product's Self-service mode (configoption5) is on.
            'vpsbridgeSelfService' => isset($params['configoption5'])
                && (int) explode('|', (string) $params['configoption5'])[0] > 0,
        ),
    );
}

function vpsbridge_ListAccounts(array $params)
{
    $result = vpsbridge_forward('ListAccounts', $params);
    if (!$result['ok']) {
        return array('success' => false, 'error' => $result['error']);
    }
    $active = class_exists('WHMCS\Service\Status') ? \WHMCS\Service\Status::ACTIVE : 'Active';
    $suspended = class_exists('WHMCS\Service\Status') ? \WHMCS\Service\Status::SUSPENDED : 'Suspended';
    $accounts = array();
    foreach ((array) (isset($result['data']['accounts']) ? $result['data']['accounts'] : array()) as $row) {
        if (!is_array($row)) {
            continue;
        }
        $accounts[] = array(
            'email' => isset($row['email']) ? $row['email'] : '',
            'username' => isset($row['username']) ? $row['username'] : '',
            'domain' => isset($row['domain']) ? $row['domain'] : '',
            'uniqueIdentifier' => isset($row['domain']) ? $row['domain'] : '',
            'product' => isset($row['product']) ? $row['product'] : '',
            'primaryip' => isset($row['primaryip']) ? $row['primaryip'] : '',
            'created' => isset($row['created']) ? $row['created'] : '',
            'status' => (isset($row['status']) && $row['status'] === 'suspended') ? $suspended : $active,
        );
    }
    return array('success' => true, 'accounts' => $accounts);
}
