{* vpsbridge: server summary on the client area's product overview. Values come from vpsbridge and
   are escaped here; nothing is rendered from remote HTML. *}
<div id="vpsbridge-overview" class="vpsbridge-panel">
  {if $vpsbridgeError}
    <div class="alert alert-warning">{$vpsbridgeError|escape}</div>
  {else}
    <table class="table table-sm">
      <tr><th>Status</th><td>{$vpsbridge.status|escape}</td></tr>
      {if $vpsbridge.hostname}<tr><th>Hostname</th><td>{$vpsbridge.hostname|escape}</td></tr>{/if}
      <tr id="vpsbridge-network"><th>IPv4</th><td>{foreach $vpsbridge.ipv4 as $ip}{$ip|escape}<br>{/foreach}</td></tr>
      {if $vpsbridge.ipv6}<tr><th>IPv6</th><td>{foreach $vpsbridge.ipv6 as $ip}{$ip|escape}<br>{/foreach}</td></tr>{/if}
    </table>
    <div id="vpsbridge-power" class="btn-group" data-service="{$vpsbridgeServiceId|escape}">
      <a class="btn btn-default" href="clientarea.php?action=productdetails&amp;id={$vpsbridgeServiceId|escape}&amp;dosinglesignon=1" target="_blank" rel="noopener">Open control panel</a>
      <form method="post" action="modules/servers/vpsbridge/client.php" target="_blank" style="display:inline">
        <input type="hidden" name="action" value="panel">
        <input type="hidden" name="serviceid" value="{$vpsbridgeServiceId|escape}">
        <input type="hidden" name="go" value="1">
        <button type="submit" class="btn btn-default">Open server panel</button>
      </form>
    </div>
    {if $vpsbridgeSelfService}
    {* Self-service credit: vpsbridge raises a WHMCS invoice; the credit is added once it is paid.
       credit.js posts it in place and shows the invoice number; without JavaScript the form goes
       to client.php, which sends the client on to the invoice. *}
    <form id="vpsbridge-credit" class="vpsbridge-credit" method="post" action="modules/servers/vpsbridge/client.php">
      <input type="hidden" name="action" value="credit">
      <input type="hidden" name="serviceid" value="{$vpsbridgeServiceId|escape}">
      <input type="hidden" name="go" value="1">
      <label for="vpsbridge-credit-amount">Add self-service credit</label>
      <input type="number" id="vpsbridge-credit-amount" name="amount" min="1" step="0.01" required class="form-control">
      <button type="submit" class="btn btn-primary">Add credit</button>
      <p class="vpsbridge-credit-result" role="status" aria-live="polite" hidden></p>
    </form>
    <script src="modules/servers/vpsbridge/templates/js/credit.js" defer></script>
    {/if}
  {/if}
</div>
