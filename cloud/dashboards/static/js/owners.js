// 告警接收人: who HQ's alerts reach, per store, region or the whole brand ("*"), at which escalation
// level, on which channel, with a mute window (GET/POST/PUT/DELETE /v1/alerts/owners, hq_admin to
// change; docs/ALERTS.md). Editing an owner changes them in place; removing asks first.

import { del, get, post, put } from "./api.js";
import { t } from "./i18n.js";
import { el, fill, loadSections, showError, startPage, table } from "./ui.js";

const form = document.getElementById("owner-form");
let editing = null;  // the owner id the form is changing, null: adding

function labelOptions() {
  for (const option of form.querySelectorAll("select[name=scope] option, select[name=min_severity] option")) {
    option.textContent = t(`owners.${option.value}`);
  }
}

function startEdit(owner) {
  editing = owner.id;
  for (const name of ["scope", "scope_id", "level", "person", "channel", "address", "min_severity"]) {
    form.elements[name].value = owner[name];
  }
  form.elements.mute.value = owner.mute || "";
  document.getElementById("form-title").textContent = `${t("owners.edit")} #${owner.id}`;
  document.getElementById("owner-cancel").hidden = false;
}

function resetForm() {
  editing = null;
  form.reset();
  document.getElementById("form-title").textContent = t("owners.add");
  document.getElementById("owner-cancel").hidden = true;
}

async function loadOwners() {
  const owners = await get("/v1/alerts/owners");
  fill("owners", table([
    { label: "owners.scope", value: (o) => `${t(`owners.${o.scope}`)} ${o.scope_id}` },
    { label: "owners.level", value: (o) => String(o.level) },
    { label: "owners.person", value: (o) => o.person },
    { label: "owners.channel", value: (o) => o.channel },
    { label: "owners.address", value: (o) => o.address },
    { label: "owners.min_severity", value: (o) => t(`owners.${o.min_severity}`) },
    { label: "owners.mute", value: (o) => o.mute || "–" },
    { label: "owners.actions", value: (o) => el("span", { class: "row-actions" },
      el("button", { type: "button", "data-action": "edit", i18n: "owners.edit", onclick: () => startEdit(o) }),
      el("button", { type: "button", "data-action": "remove", i18n: "owners.remove", onclick: () => remove(o) })) },
  ], owners, { rowAttrs: (o) => ({ "data-owner": o.id }) }));
}

async function loadScopeIds() {
  const ranking = await get("/v1/health/stores");
  const ids = new Set(["*"]);
  for (const s of ranking.stores) {
    ids.add(s.store);
    if (s.region) ids.add(s.region);
  }
  document.getElementById("scope-ids").replaceChildren(...[...ids].map((id) => el("option", { value: id })));
}

async function remove(owner) {
  if (!confirm(t("owners.confirm_remove").replace("{person}", owner.person))) return;
  try {
    await del(`/v1/alerts/owners/${owner.id}`);
    if (editing === owner.id) resetForm();
    await loadOwners();
  } catch (exc) {
    showError(exc, "owners");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = Object.fromEntries(new FormData(form));
  const body = { ...data, level: Number(data.level), mute: data.mute || null };
  document.body.dataset.ready = "false";
  try {
    if (editing === null) await post("/v1/alerts/owners", body);
    else await put(`/v1/alerts/owners/${editing}`, body);
    resetForm();
    await loadOwners();
  } catch (exc) {
    showError(exc, "owner-form");
  } finally {
    document.body.dataset.ready = "true";
  }
});
document.getElementById("owner-cancel").addEventListener("click", resetForm);

if (startPage()) {
  labelOptions();
  loadSections([["owners", loadOwners], ["owner-form", loadScopeIds]]);
}
