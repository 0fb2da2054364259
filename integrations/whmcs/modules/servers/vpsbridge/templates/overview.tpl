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
  {/if}
</div>
