// Scanning from the page: each file or URL gets a row at once, is sent (two at a time, a 429
// retried after the gateway's Retry-After), then followed by long-polling
// `GET /images/{hash}?wait=` (three at a time, oldest first) until it is done or failed.

import { ApiFailure, call, getJson } from "./api.js";

const SENDING_AT_ONCE = 2;
const POLLING_AT_ONCE = 3;
const WAIT_SECONDS = 20;
const BUSY_RETRIES = 8;
const IMAGE_NAME = /\.(jpe?g|png|webp|gif|bmp)$/i;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a picked or dropped file looks like an image worth sending. */
export function looksLikeImage(file) {
  return file.type.startsWith("image/") || IMAGE_NAME.test(file.name);
}

export class Scans {
  /** `changed(row)` is called whenever a row changes (`null`: the counts only). */
  constructor(changed) {
    this.rows = [];
    this.changed = changed;
    this.toSend = [];
    this.sending = 0;
    this.toPoll = [];
    this.polling = new Set();
    this.skipped = 0;
  }

  /** Rows known for an image hash. */
  rowsOf(hash) {
    return this.rows.filter((row) => row.hash === hash);
  }

  /** Adds files (each with the name to record) and URLs; each gets its row at once. */
  add(files, urls) {
    for (const { file, name } of files) {
      this.push({ name, file, state: "waiting" });
    }
    for (const url of urls) {
      this.push({ name: url, url, state: "waiting" });
    }
    this.pump();
  }

  skip(count) {
    this.skipped += count;
    this.changed(null);
  }

  push(row) {
    row.id = this.rows.length;
    this.rows.push(row);
    this.toSend.push(row);
    this.changed(row);
  }

  update(row, fields) {
    Object.assign(row, fields);
    this.changed(row);
  }

  /** How many rows are in each state, for the progress line. */
  counts() {
    const counts = { total: this.rows.length, sent: 0, done: 0, failed: 0, skipped: this.skipped };
    for (const row of this.rows) {
      if (row.hash) counts.sent += 1;
      if (row.state === "done") counts.done += 1;
      if (row.state === "failed") counts.failed += 1;
    }
    return counts;
  }

  pump() {
    while (this.sending < SENDING_AT_ONCE && this.toSend.length > 0) {
      const row = this.toSend.shift();
      this.sending += 1;
      this.send(row).finally(() => {
        this.sending -= 1;
        this.pump();
      });
    }
    while (this.polling.size < POLLING_AT_ONCE && this.toPoll.length > 0) {
      const hash = this.toPoll.shift();
      if (this.polling.has(hash)) continue;
      this.polling.add(hash);
      this.poll(hash).finally(() => {
        this.polling.delete(hash);
        this.pump();
      });
    }
  }

  async send(row) {
    this.update(row, { state: "sending" });
    for (let attempt = 0; ; attempt += 1) {
      try {
        const resp = row.file
          ? await call("POST", `scan/image/${encodeURIComponent(row.name)}`, { body: row.file })
          : await call("POST", "scan/url", { json: { url: row.url } });
        const { hash } = await resp.json();
        this.update(row, { hash, state: "queued" });
        this.follow(hash);
        return;
      } catch (e) {
        if (e instanceof ApiFailure && e.status === 429 && attempt < BUSY_RETRIES) {
          this.update(row, { state: "waiting", error: e.message });
          await sleep(Math.max(1, e.retryAfter || 2) * 1000);
          continue;
        }
        this.update(row, { state: "failed", error: e.message, status: e.status });
        return;
      }
    }
  }

  /** Follows an image until it is done or failed (again, after an erasure, say). */
  follow(hash) {
    if (!this.toPoll.includes(hash) && !this.polling.has(hash)) this.toPoll.push(hash);
    this.pump();
  }

  async poll(hash) {
    for (;;) {
      let image;
      try {
        image = await getJson(`images/${hash}?wait=${WAIT_SECONDS}`);
      } catch (e) {
        if (e instanceof ApiFailure && (e.status === 0 || e.status >= 500 || e.status === 429)) {
          await sleep(2000);
          continue;
        }
        for (const row of this.rowsOf(hash)) {
          this.update(row, { state: "failed", error: e.message, status: e.status });
        }
        return;
      }
      for (const row of this.rowsOf(hash)) {
        this.update(row, {
          state: image.state,
          error: image.error,
          faceCount: image.face_count,
        });
      }
      if (image.state === "done" || image.state === "failed") return;
    }
  }
}

/** Every file under a dropped folder entry, each with its path inside the drop. */
async function filesOfEntry(entry) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ file, name: entry.fullPath.replace(/^\//, "") }];
  }
  const reader = entry.createReader();
  const found = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) found.push(...(await filesOfEntry(child)));
  }
  return found;
}

/** The files of a drop, folders walked. */
export async function filesOfDrop(dataTransfer) {
  const entries = [...dataTransfer.items]
    .filter((item) => item.kind === "file")
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (entries.some((entry) => entry === null)) {
    return [...dataTransfer.files].map((file) => ({ file, name: file.name }));
  }
  const all = [];
  for (const entry of entries) all.push(...(await filesOfEntry(entry)));
  return all;
}

/** The files of a file input, with their path inside a picked folder. */
export function filesOfInput(input) {
  return [...input.files].map((file) => ({ file, name: file.webkitRelativePath || file.name }));
}
