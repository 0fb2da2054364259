/* The console popup: noVNC (from npm, served from /static/vendor/novnc) connected to our relay with a
 * single-use ticket. Nothing here holds a reusable credential: the relay answers the platform's VNC
 * password itself and offers this page security type None. */
import RFB from "/static/vendor/novnc/core/rfb.js";

const screen = document.getElementById("screen");
const status = document.querySelector("[data-console-status]");
const rfb = new RFB(screen, screen.dataset.wsUrl, { wsProtocols: ["binary"] });
rfb.scaleViewport = true;
rfb.background = "#000";
rfb.addEventListener("connect", () => { status.textContent = screen.dataset.labelConnected; status.className = "badge badge-running"; document.body.dataset.connected = "1"; });
rfb.addEventListener("disconnect", () => {
  if (document.body.dataset.connected !== "refused") {
    status.textContent = screen.dataset.labelDisconnected;
    document.body.dataset.connected = "0";
  }
  status.className = "badge badge-stopped";
});
// The relay explains a refusal inside RFB (expired link, console unreachable); show its sentence.
rfb.addEventListener("securityfailure", (e) => {
  status.textContent = e.detail.reason || screen.dataset.labelDisconnected;
  status.className = "badge badge-stopped";
  document.body.dataset.connected = "refused";
});
document.querySelector("[data-console-cad]").addEventListener("click", () => rfb.sendCtrlAltDel());
window.vpsbConsole = rfb;
