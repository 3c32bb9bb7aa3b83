// "Remove" on a model card: a confirm dialog, then DELETE /api/deployments/{name}. Deployments
// from the config file or built in cannot be removed at run time: the dialog says why instead.
// An in-page <dialog>, not window.confirm(): it can say what happens to the recorded usage.

import { api } from "./api.js";
import { append, button, h } from "./dom.js";
import { whyNotRemovable } from "./origin.js";

export function removeDialog(name, dep, onRemoved) {
  const why = whyNotRemovable(dep);
  const error = h("div", { class: "callout callout-error", role: "alert", hidden: true });
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": "remove-title" });
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  let actions;
  if (why) {
    actions = [button("OK", { class: "btn-primary", onclick: close })];
  } else {
    const confirm = button("Remove", { class: "btn-danger", onclick: async () => {
      confirm.disabled = true;
      error.hidden = true;
      try {
        await api.removeDeployment(name);
        close();
        onRemoved();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        confirm.disabled = false;
      }
    } });
    actions = [button("Cancel", { class: "btn-ghost", onclick: close }), confirm];
  }
  append(dialog, [
    h("h2", { id: "remove-title" }, why ? `${name} cannot be removed here` : `Remove ${name}?`),
    why ? h("p", {}, why) : [
      h("p", {}, "Clients that send ", h("code", {}, name), " as the model will get an error from then on."),
      h("p", { class: "subtle" }, "Its recorded requests stay in the database; adding a deployment of the same name shows them again."),
    ],
    error,
    h("div", { class: "form-actions" }, actions)]);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
