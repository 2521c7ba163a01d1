// A refused form answers with its error regions only, out of band, so that nothing typed while
// the request ran is replaced; this marks each field invalid, or valid again, to match them.
document.addEventListener("htmx:afterSettle", () => {
  for (const slot of document.querySelectorAll(".error[id$='-error']")) {
    const invalid = slot.textContent.trim() !== "";
    slot.closest(".field, fieldset")?.classList.toggle("field-invalid", invalid);
    const control = document.getElementById(slot.id.slice(0, -"-error".length));
    if (control && invalid) control.setAttribute("aria-invalid", "true");
    else if (control) control.removeAttribute("aria-invalid");
  }
});
