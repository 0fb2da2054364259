<?php
/**
 * vpsbridge for WHMCS - reading facts from WHMCS's database and writing back what vpsbridge answered.
 *
 * No decisions are made here: the functions collect what only WHMCS knows (the product row, an
 * order's services, the cart in the session) and write what the service decided (stock quantities,
 * usage figures, the custom fields the module needs). All through WHMCS's Capsule.
 */

namespace WHMCS\Module\Server\Vpsbridge;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Whmcs
{
    const MODULE = 'vpsbridge';
    const OS_FIELD = 'Initial Operating System';
    const SSH_KEY_FIELD = 'Initial SSH Key';
    /** How many configoptionN the module declares (see vpsbridge_ConfigOptions). */
    const SETTINGS = 9;

    /** The first enabled vpsbridge server record: for hooks and cron, which get no $params. */
    public static function serverConfig()
    {
        $row = Capsule::table('tblservers')
            ->where('type', self::MODULE)
            ->where('disabled', 0)
            ->orderBy('id')
            ->first();
        if (!$row) {
            return array('url' => '', 'secret' => '');
        }
        return array(
            'url' => Transport::baseUrl($row->hostname !== '' ? $row->hostname : $row->ipaddress, $row->secure, $row->port),
            'secret' => self::secret($row->accesshash),
        );
    }

    /** The access hash as stored; decrypted first when the installation stores it encrypted. */
    private static function secret($stored)
    {
        $stored = trim((string) $stored);
        if ($stored !== '' && function_exists('decrypt')) {
            $plain = decrypt($stored);
            if (is_string($plain) && $plain !== '' && $plain !== $stored && preg_match('/^[\x20-\x7e]+$/', $plain)) {
                return trim($plain);
            }
        }
        return $stored;
    }

    /** The product row fields the service upserts from (id, name, stock control, module settings). */
    public static function product($pid)
    {
        $row = Capsule::table('tblproducts')->where('id', (int) $pid)->first();
        return $row ? self::productArray($row) : array();
    }

    private static function productArray($row)
    {
        $out = array(
            'id' => (int) $row->id,
            'name' => (string) $row->name,
            'stockcontrol' => (string) $row->stockcontrol,
            'qty' => (int) $row->qty,
        );
        for ($i = 1; $i <= self::SETTINGS; $i++) {
            $key = 'configoption' . $i;
            $out[$key] = isset($row->$key) ? (string) $row->$key : '';
        }
        return $out;
    }

    /** Every product of this module with stock control on, with its settings (for stock refreshes). */
    public static function stockProducts($pid = null)
    {
        $query = Capsule::table('tblproducts')->where('servertype', self::MODULE)->where('stockcontrol', 1);
        if ($pid !== null) {
            $query->where('id', (int) $pid);
        }
        $out = array();
        foreach ($query->orderBy('id')->get() as $row) {
            $product = self::productArray($row);
            $locations = self::locations($row->id);
            if ($locations !== null) {
                $product['locations'] = $locations;
            }
            $out[] = $product;
        }
        return $out;
    }

    /**
     * The values ("3|London") of the product's "Location" configurable option, hidden ones left out;
     * null when the product has no such option (the service then keeps what it has stored).
     */
    public static function locations($pid)
    {
        $groups = array();
        foreach (Capsule::table('tblproductconfiglinks')->where('pid', (int) $pid)->get() as $link) {
            $groups[] = (int) $link->gid;
        }
        if (!$groups) {
            return null;
        }
        $found = false;
        $values = array();
        foreach (Capsule::table('tblproductconfigoptions')->whereIn('gid', $groups)->get() as $option) {
            $name = strtolower(trim(explode('|', (string) $option->optionname, 2)[0]));
            if ($name !== 'location') {
                continue;
            }
            $found = true;
            $subs = Capsule::table('tblproductconfigoptionssub')->where('configid', (int) $option->id)->orderBy('id')->get();
            foreach ($subs as $sub) {
                if (!empty($sub->hidden)) {
                    continue;
                }
                $values[] = (string) $sub->optionname;
            }
        }
        return $found ? $values : null;
    }

    /**
     * A vpsbridge service's product configurable options with their visible choices, for the upgrade
     * page: [{id, name, choices: [{id, label}]}]; null when the service is not a vpsbridge one.
     */
    public static function upgradeOptions($serviceId)
    {
        $service = Capsule::table('tblhosting')->where('id', (int) $serviceId)->first();
        if (!$service) {
            return null;
        }
        $product = Capsule::table('tblproducts')->where('id', (int) $service->packageid)->first();
        if (!$product || $product->servertype !== self::MODULE) {
            return null;
        }
        $groups = array();
        foreach (Capsule::table('tblproductconfiglinks')->where('pid', (int) $product->id)->get() as $link) {
            $groups[] = (int) $link->gid;
        }
        $options = array();
        if (!$groups) {
            return array('pid' => (int) $product->id, 'options' => $options);
        }
        foreach (Capsule::table('tblproductconfigoptions')->whereIn('gid', $groups)->orderBy('id')->get() as $option) {
            $choices = array();
            $subs = Capsule::table('tblproductconfigoptionssub')->where('configid', (int) $option->id)->orderBy('id')->get();
            foreach ($subs as $sub) {
                if (empty($sub->hidden)) {
                    $choices[] = array('id' => (int) $sub->id, 'label' => (string) $sub->optionname);
                }
            }
            $options[] = array('id' => (int) $option->id, 'name' => (string) $option->optionname, 'choices' => $choices);
        }
        return array('pid' => (int) $product->id, 'options' => $options);
    }

    /** The username of the WHMCS admin signed in to this request (for the operator console sign-on). */
    public static function adminUsername()
    {
        $adminId = isset($_SESSION['adminid']) ? (int) $_SESSION['adminid'] : 0;
        if ($adminId <= 0) {
            return '';
        }
        $row = Capsule::table('tbladmins')->where('id', $adminId)->first();
        return $row ? (string) $row->username : '';
    }

    /**
     * Write what the service answered: qty for each product id with a number; null leaves the row alone
     * (the service could not tell - never turn "unknown" into "out of stock").
     */
    public static function writeStock($stock)
    {
        if (!is_array($stock)) {
            return 0;
        }
        $written = 0;
        foreach ($stock as $pid => $qty) {
            if ($qty === null || !is_numeric($qty)) {
                continue;
            }
            $written += Capsule::table('tblproducts')
                ->where('id', (int) $pid)
                ->where('servertype', self::MODULE)
                ->where('stockcontrol', 1)
                ->update(array('qty' => max(0, (int) $qty)));
        }
        return $written;
    }

    /** Create the product custom fields the module reads, once per product. */
    public static function ensureCustomFields($pid)
    {
        $pid = (int) $pid;
        if ($pid <= 0) {
            return;
        }
        $fields = array(
            self::OS_FIELD => 'The operating system installed on first boot (filled by the OS gallery).',
            self::SSH_KEY_FIELD => 'An SSH public key, or the id of a saved key (filled by the key picker).',
        );
        $order = 0;
        foreach ($fields as $name => $description) {
            $order++;
            $exists = Capsule::table('tblcustomfields')
                ->where('type', 'product')
                ->where('relid', $pid)
                ->where('fieldname', $name)
                ->exists();
            if ($exists) {
                continue;
            }
            Capsule::table('tblcustomfields')->insert(array(
                'type' => 'product',
                'relid' => $pid,
                'fieldname' => $name,
                'fieldtype' => 'text',
                'description' => $description,
                'fieldoptions' => '',
                'regexpr' => '',
                'adminonly' => '',
                'required' => '',
                'showorder' => 'on',
                'showinvoice' => '',
                'sortorder' => $order,
            ));
        }
    }

    /** Custom field ids of a product by name (the order form posts customfield[ID]). */
    public static function customFieldIds($pid)
    {
        $out = array();
        $rows = Capsule::table('tblcustomfields')->where('type', 'product')->where('relid', (int) $pid)->get();
        foreach ($rows as $row) {
            $out[(string) $row->fieldname] = (int) $row->id;
        }
        return $out;
    }

    /** The order of a service: its id, status and the ids of every service of this module in it. */
    public static function orderFacts($serviceId)
    {
        $service = Capsule::table('tblhosting')->where('id', (int) $serviceId)->first();
        if (!$service || !$service->orderid) {
            return null;
        }
        $order = Capsule::table('tblorders')->where('id', (int) $service->orderid)->first();
        if (!$order) {
            return null;
        }
        $ids = Capsule::table('tblhosting')
            ->join('tblproducts', 'tblproducts.id', '=', 'tblhosting.packageid')
            ->where('tblhosting.orderid', (int) $service->orderid)
            ->where('tblproducts.servertype', self::MODULE)
            ->orderBy('tblhosting.id')
            ->pluck('tblhosting.id');
        $services = array();
        foreach ($ids as $id) {
            $services[] = (int) $id;
        }
        return array('id' => (int) $order->id, 'status' => (string) $order->status, 'services' => $services);
    }

    /** Usage figures (MB) per service id, written on the service rows of this server only. */
    public static function writeUsage($serverId, $services)
    {
        if (!is_array($services)) {
            return 0;
        }
        $written = 0;
        foreach ($services as $row) {
            if (!is_array($row) || empty($row['serviceid'])) {
                continue;
            }
            $update = array('lastupdate' => Capsule::raw('now()'));
            foreach (array('diskusage', 'disklimit', 'bwusage', 'bwlimit') as $column) {
                if (isset($row[$column]) && is_numeric($row[$column])) {
                    $update[$column] = (int) $row[$column];
                }
            }
            $query = Capsule::table('tblhosting')->where('id', (int) $row['serviceid']);
            if ($serverId) {
                $query->where('server', (int) $serverId);
            }
            $written += $query->update($update);
        }
        return $written;
    }

    /** The cart's products of this module with their custom fields by name (for checkout checks). */
    public static function cartItems()
    {
        $items = array();
        if (!isset($_SESSION['cart']['products']) || !is_array($_SESSION['cart']['products'])) {
            return $items;
        }
        foreach ($_SESSION['cart']['products'] as $line) {
            if (!is_array($line) || empty($line['pid'])) {
                continue;
            }
            $product = Capsule::table('tblproducts')->where('id', (int) $line['pid'])->first();
            if (!$product || $product->servertype !== self::MODULE) {
                continue;
            }
            $names = array_flip(self::customFieldIds($line['pid']));
            $fields = array();
            if (isset($line['customfields']) && is_array($line['customfields'])) {
                foreach ($line['customfields'] as $id => $value) {
                    if (isset($names[(int) $id])) {
                        $fields[$names[(int) $id]] = is_scalar($value) ? (string) $value : '';
                    }
                }
            }
            $items[] = array('pid' => (int) $line['pid'], 'name' => (string) $product->name, 'customfields' => $fields);
        }
        return $items;
    }
}
