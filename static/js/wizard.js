// The wizard's live QR version: htmx GETs it with the form's values as they are typed. A GET
// puts its values in the URL, which servers and proxies log, so the secrets and the files
// travel only as their sizes (the server sizes the payload with placeholders of that length).
(() => {
  const SECRETS = ["wifi_password", "ldap_password", "wifi_user_certificate_password"];
  const FILES = ["wifi_ca_certificate", "wifi_user_certificate"];
  const encoder = new TextEncoder();
  // The value's bytes inside the payload's JSON string (quotes and backslashes are escaped).
  const jsonBytes = (text) => encoder.encode(JSON.stringify(text)).length - 2;

  document.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt.id !== "qr-version") return;
    const data = event.detail.formData;
    data.delete("csrf_token");
    for (const name of SECRETS) {
      const value = data.get(name);
      data.delete(name);
      if (typeof value === "string" && value) data.set(`${name}_bytes`, jsonBytes(value));
    }
    for (const name of FILES) {
      const file = data.get(name);
      data.delete(name);
      if (file && typeof file === "object" && file.size) data.set(`${name}_bytes`, file.size);
    }
  });
})();
