// One image: the photo with a box around each face (landmarks on a toggle), and beside each
// face its matches, closest first, with the matching face's thumbnail, the other image's
// names and the distance. An upload is drawn from the file in this browser, a URL from the
// URL; an image known only to the gateway is shown by its faces.

import { ApiFailure, getJson, thumbnail } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, text = "") {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  if (text) el.textContent = text;
  return el;
}

function svg(tag, attributes) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  return el;
}

/** "photo.jpg", or "photo.jpg and 2 other names". */
function nameOf(names, fallback) {
  if (!names || names.length === 0) return fallback;
  return names.length === 1 ? names[0] : `${names[0]} and ${names.length - 1} other names`;
}

/** An <img> of a face's thumbnail, filled in when it arrives; nothing when there is none. */
function faceThumbnail(hash, face, alt, className) {
  const img = element("img", { alt, class: className, width: "64", height: "64" });
  img.hidden = true;
  thumbnail(hash, face)
    .then((url) => {
      if (url) {
        img.src = url;
        img.hidden = false;
      }
    })
    .catch(() => {}); // the page says nothing of a missing picture: names and distances remain
  return img;
}

export class Viewer {
  /** `fileOf(hash)` gives the File an image was uploaded from here; `open(hash)` opens another. */
  constructor(fileOf, open) {
    this.fileOf = fileOf;
    this.open = open;
    this.hash = null;
    this.objectUrl = null;
    this.generation = 0;
    $("landmarks-toggle").addEventListener("change", (event) => {
      $("overlay").classList.toggle("with-landmarks", event.target.checked);
    });
  }

  /** Shows image `hash`; again when it changes state. */
  async show(hash, { focus = true } = {}) {
    const generation = ++this.generation;
    const section = $("viewer");
    section.hidden = false;
    section.dataset.hash = hash;
    section.dataset.ready = "false";
    this.hash = hash;
    let image;
    let matches = [];
    let source;
    try {
      image = await getJson(`images/${hash}`);
      if (image.state === "done" && image.face_count > 0) {
        matches = await getJson(`match/${hash}/details?faces=true`);
      }
      source = this.fileOf(hash) || (await this.scannedUrlOf(image));
    } catch (e) {
      if (generation !== this.generation) return;
      $("viewer-title").textContent = "Image";
      $("viewer-status").textContent =
        e instanceof ApiFailure ? e.message : `The image could not be read: ${e}`;
      section.dataset.ready = "true";
      return;
    }
    if (generation !== this.generation) return; // another image was opened meanwhile
    this.render(image, matches, source);
    section.dataset.ready = "true";
    section.dataset.state = image.state;
    if (focus) $("viewer-title").focus();
  }

  /**
   * A URL the gateway itself bound to this image by scanning it. Names are not trusted for
   * this: a filename may be spelled like a URL, and drawing it would make this browser fetch
   * an address an uploader chose.
   */
  async scannedUrlOf(image) {
    for (const name of image.names) {
      if (!/^https?:\/\//i.test(name)) continue;
      try {
        const bound = await getJson(`urls?url=${encodeURIComponent(name)}`);
        if (bound.hash === image.hash) return bound.url;
      } catch {
        // not a scanned URL of this collection (a filename spelled like one)
      }
    }
    return null;
  }

  render(image, matches, source) {
    const title = nameOf(image.names, image.hash);
    $("viewer-title").textContent = title;
    $("viewer-names").textContent = `Hash ${image.hash}` +
      (image.names.length > 1 ? ` · names: ${image.names.join(", ")}` : "");
    this.drawPhoto(image, title, source);
    this.drawBoxes(image);
    const status = $("viewer-status");
    if (image.state === "failed") {
      status.textContent = `Processing failed: ${image.error || "no reason given"}`;
    } else if (image.state !== "done") {
      status.textContent = `Still ${image.state}: the faces appear when it is done.`;
    } else if (image.faces.length === 0) {
      status.textContent = "No face found in this image.";
    } else {
      const count = image.faces.length;
      status.textContent = `${count} face${count === 1 ? "" : "s"} found.`;
    }
    this.listFaces(image, matches);
  }

  drawPhoto(image, title, source) {
    const photo = $("photo");
    const placeholder = $("placeholder");
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
    const stage = $("stage");
    const [width, height] = [image.width || 4, image.height || 3];
    stage.style.aspectRatio = `${width} / ${height}`;
    if (source) {
      photo.src = source instanceof Blob ? (this.objectUrl = URL.createObjectURL(source)) : source;
      photo.alt = `The photo ${title}`;
      photo.hidden = false;
      placeholder.hidden = true;
      photo.onerror = () => {
        photo.hidden = true;
        placeholder.hidden = false;
        placeholder.textContent = "The photo could not be loaded here: only its faces are shown.";
      };
    } else {
      photo.removeAttribute("src");
      photo.hidden = true;
      placeholder.hidden = false;
      placeholder.textContent = "The photo is not in this browser: only its faces are shown.";
    }
  }

  drawBoxes(image) {
    const overlay = $("overlay");
    overlay.replaceChildren();
    overlay.setAttribute("viewBox", `0 0 ${image.width || 4} ${image.height || 3}`);
    const stroke = Math.max(2, Math.round(Math.max(image.width || 0, image.height || 0) / 300));
    image.faces.forEach((face, n) => {
      const { x, y, width, height } = face.box;
      const group = svg("g", { class: "face", "data-face": String(n) });
      const title = svg("title", {});
      title.textContent = `Face ${n + 1} (score ${face.score.toFixed(2)})`;
      group.append(title);
      group.append(svg("rect", {
        class: "face-box", x, y, width, height, "stroke-width": stroke,
      }));
      const label = svg("text", {
        class: "face-label", x: x + stroke, y: Math.max(y - stroke, stroke * 6),
        "font-size": stroke * 7,
      });
      label.textContent = String(n + 1);
      group.append(label);
      const points = svg("g", { class: "landmarks" });
      for (const [px, py] of face.landmarks) {
        points.append(svg("circle", { class: "landmark", cx: px, cy: py, r: stroke }));
      }
      group.append(points);
      overlay.append(group);
    });
    overlay.setAttribute("aria-label", `${image.faces.length} face boxes`);
  }

  listFaces(image, matches) {
    const list = $("face-list");
    list.replaceChildren();
    image.faces.forEach((_, n) => {
      const item = element("li", { class: "face-item", "data-face": String(n) });
      const head = element("div", { class: "face-head" });
      head.append(faceThumbnail(image.hash, n, `Face ${n + 1}`, "face-thumb"));
      head.append(element("h3", {}, `Face ${n + 1}`));
      item.append(head);
      const found = [];
      for (const match of matches) {
        for (const pair of match.faces || []) {
          if (pair.face === n) found.push({ match, pair });
        }
      }
      found.sort((a, b) => a.pair.distance - b.pair.distance);
      if (found.length === 0) {
        item.append(element("p", { class: "no-match" }, "No match yet."));
      } else {
        const ul = element("ul", { class: "matches" });
        for (const { match, pair } of found) {
          const name = nameOf(match.names, match.hash);
          const button = element("button", {
            type: "button",
            class: "match",
            "data-hash": match.hash,
            "aria-label": `Open ${name}: face ${pair.other_face + 1}, distance ${pair.distance.toFixed(3)}`,
          });
          button.append(faceThumbnail(match.hash, pair.other_face,
            `Face ${pair.other_face + 1} of ${name}`, "match-thumb"));
          const words = element("span", { class: "match-words" });
          words.append(element("span", { class: "match-name" }, name));
          words.append(element("span", { class: "distance" }, `distance ${pair.distance.toFixed(3)}`));
          button.append(words);
          button.addEventListener("click", () => this.open(match.hash));
          const li = element("li");
          li.append(button);
          ul.append(li);
        }
        item.append(ul);
      }
      list.append(item);
    });
  }
}
