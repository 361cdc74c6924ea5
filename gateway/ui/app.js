// The page's wiring: the scan controls, the list of images with their states and the progress
// line, the image viewer, and the key dialog (shown when the gateway answers 401).

import { apiKey, setApiKey, whenUnauthorized } from "./api.js";
import { Scans, filesOfDrop, filesOfInput, looksLikeImage } from "./scan.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);

const STATE_WORDS = {
  waiting: "waiting",
  sending: "sending…",
  pending: "queued",
  queued: "queued",
  done: "done",
  failed: "failed",
};

function message(text) {
  const el = $("message");
  el.textContent = text;
  el.hidden = !text;
}

// ---- the key dialog -------------------------------------------------------------------------

let keyAsked = null;

/** Asks for a key once for every request refused with 401 meanwhile; true when one is given. */
function askForKey(reason) {
  if (!keyAsked) {
    keyAsked = new Promise((resolve) => {
      const dialog = $("key-dialog");
      const error = $("key-error");
      error.textContent = reason || "";
      error.hidden = !reason;
      $("key-input").value = "";
      const done = (given) => {
        dialog.close();
        keyAsked = null;
        resolve(given);
      };
      $("key-form").onsubmit = (event) => {
        event.preventDefault();
        const key = $("key-input").value.trim();
        if (!key) return;
        setApiKey(key);
        done(true);
      };
      $("key-cancel").onclick = () => done(false);
      $("key-forget").onclick = () => {
        setApiKey("");
        done(false);
      };
      dialog.oncancel = () => done(false);
      dialog.showModal();
      $("key-input").focus();
    });
  }
  return keyAsked;
}

whenUnauthorized(() =>
  askForKey(apiKey() ? "The gateway refused this key: unknown, revoked or mistyped." : ""),
);
$("key-button").addEventListener("click", () => askForKey(""));

// ---- images and the viewer ------------------------------------------------------------------

const items = new Map(); // row id → <li>

/** The file an image was uploaded from in this tab, if any. */
function fileOf(hash) {
  const upload = scans.rowsOf(hash).find((row) => row.file);
  return upload ? upload.file : null;
}

const viewer = new Viewer(fileOf, (hash) => viewer.show(hash));

function renderRow(row) {
  let li = items.get(row.id);
  if (!li) {
    li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "image-row";
    button.innerHTML = '<span class="image-name"></span><span class="state"></span>' +
      '<span class="detail"></span>';
    button.addEventListener("click", () => {
      if (row.hash) viewer.show(row.hash);
    });
    li.append(button);
    $("image-list").append(li);
    items.set(row.id, li);
    $("no-images").hidden = true;
  }
  li.dataset.state = row.state;
  if (row.hash) li.dataset.hash = row.hash;
  const button = li.firstElementChild;
  button.disabled = !row.hash;
  button.querySelector(".image-name").textContent = row.name;
  button.querySelector(".state").textContent = STATE_WORDS[row.state] || row.state;
  let detail = "";
  if (row.state === "failed") detail = row.error || "";
  else if (row.state === "done") {
    detail = row.faceCount === 1 ? "1 face" : `${row.faceCount ?? 0} faces`;
  } else if (row.state === "waiting" && row.error) detail = row.error;
  button.querySelector(".detail").textContent = detail;
  button.setAttribute("aria-label", `${row.name}: ${STATE_WORDS[row.state] || row.state}` +
    (detail ? `, ${detail}` : ""));
  if (row.state === "failed" && row.status === 401) {
    message("Nothing was scanned: the gateway needs a valid API key (the “API key…” button).");
  } else if (row.state === "failed" && row.status === 403) {
    message("This key may not scan: it needs the scan scope.");
  }
  // The open image changed state: show it as it is now.
  if (row.hash && viewer.hash === row.hash && (row.state === "done" || row.state === "failed")) {
    viewer.show(row.hash, { focus: false });
  }
}

function renderProgress() {
  const c = scans.counts();
  if (c.total === 0 && c.skipped === 0) return;
  const parts = [`${c.sent} of ${c.total} sent`, `${c.done} done`];
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.skipped) parts.push(`${c.skipped} skipped (not images)`);
  $("progress").textContent = parts.join(" · ");
  $("progress").dataset.done = String(c.done + c.failed === c.total);
}

const scans = new Scans((row) => {
  if (row) renderRow(row);
  renderProgress();
});

// ---- scan controls --------------------------------------------------------------------------

function addFiles(files) {
  const images = files.filter(({ file }) => looksLikeImage(file));
  if (files.length > images.length) scans.skip(files.length - images.length);
  message("");
  scans.add(images, []);
}

for (const id of ["file-input", "folder-input"]) {
  $(id).addEventListener("change", (event) => {
    addFiles(filesOfInput(event.target));
    event.target.value = "";
  });
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  filesOfDrop(event.dataTransfer).then(addFiles, (e) => message(`The drop could not be read: ${e}`));
});
drop.addEventListener("click", () => $("file-input").click());
drop.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    $("file-input").click();
  }
});

$("url-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("url-text");
  const urls = text.value.split(/\s+/).map((u) => u.trim()).filter(Boolean);
  const bad = urls.filter((u) => !/^https?:\/\//i.test(u));
  if (bad.length) {
    message(`Not an http(s) URL: ${bad.join(", ")}`);
    return;
  }
  message("");
  scans.add([], urls);
  text.value = "";
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("viewer").hidden && !$("key-dialog").open) {
    $("viewer").hidden = true;
    viewer.hash = null;
  }
});
