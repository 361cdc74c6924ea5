// Collects the page's own errors (a script that throws or fails to load, a promise nobody
// caught, console.error) in window.facematchErrors: the browser test fails with them. A photo
// that fails to load (a URL gone offline) is not one: the page says so in words instead.
"use strict";
window.facematchErrors = [];
window.addEventListener(
  "error",
  (event) => {
    const target = event.target;
    if (event instanceof ErrorEvent) {
      window.facematchErrors.push(`${event.message} (${event.filename}:${event.lineno})`);
    } else if (target && (target.tagName === "SCRIPT" || target.tagName === "LINK")) {
      window.facematchErrors.push(`failed to load ${target.src || target.href}`);
    }
  },
  true,
);
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  window.facematchErrors.push(`unhandled rejection: ${(reason && reason.stack) || reason}`);
});
{
  const original = console.error.bind(console);
  console.error = (...args) => {
    window.facematchErrors.push(args.map(String).join(" "));
    original(...args);
  };
}
