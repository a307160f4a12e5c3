// Sign in: keep the key for this tab, ask the API who it belongs to, open that person's page.

import { forgetApiKey, get, setApiKey } from "./api.js";
import { t } from "./i18n.js";
import { clearErrors, showError, startPage } from "./ui.js";

/** Where a role lands: a store manager on their store, HQ on the overview. */
export function landing(whoami) {
  if (whoami.role === "store_manager") return `store.html?store=${encodeURIComponent(whoami.store)}`;
  if (whoami.role === "hq_admin" || whoami.role === "hq_analyst") return "hq.html";
  return null;
}

startPage({ needsKey: false });
document.body.dataset.ready = "true";
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  setApiKey(document.getElementById("key").value.trim());
  try {
    const target = landing(await get("/v1/whoami"));
    if (target === null) {
      forgetApiKey();
      showError(new Error(t("login.device")));
      return;
    }
    location.href = target;
  } catch (exc) {
    forgetApiKey();
    showError(exc);
  }
});
