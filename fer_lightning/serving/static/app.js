// The page of python -m fer_lightning.serve: a photo or camera frames go to POST /predict; the answer is drawn as a box
// per face on the image and seven bars per face beside it. Plain JavaScript, no build step, nothing from elsewhere.
"use strict";

const COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4"];
// Smaller images are drawn enlarged by a whole factor, so they fill a wide window (CSS shrinks them to fit a narrow one);
// one as small as a face crop keeps its pixels sharp.
const MIN_SIDE = 960;
const CROP_SIDE = 160;

const $ = (id) => document.getElementById(id);
const state = { health: null, blob: null, camera: null, timer: null, busy: false };

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

async function predict(blob) {
  const form = new FormData();
  form.append("file", blob, "image");
  const query = new URLSearchParams();
  if (state.health && state.health.explain && $("explain").checked) query.set("explain", "true");
  const whole = $("whole").checked;
  if (whole) query.set("detect_faces", "false");
  const response = await fetch(`/predict?${query}`, { method: "POST", body: form });
  const answer = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
  return { ...answer, whole };  // what was asked, whatever the box says by the time the answer arrives
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("this browser cannot show the image"));
    image.src = url;
  });
}

async function draw(picture, answer) {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const scale = Math.max(1, Math.ceil(MIN_SIDE / Math.max(answer.width, answer.height)));
  canvas.width = answer.width * scale;
  canvas.height = answer.height * scale;
  $("figure").hidden = false;
  const shown = canvas.getBoundingClientRect().width / canvas.width || 1; // CSS pixels per canvas pixel
  const sharp = Math.max(answer.width, answer.height) <= CROP_SIDE;
  canvas.classList.toggle("pixelated", sharp);
  ctx.imageSmoothingEnabled = !sharp;
  ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = true;
  for (const face of answer.faces) {
    if (!face.saliency) continue;
    const { square, angle, png } = face.saliency;
    const map = await loadImage(png);
    ctx.save();
    ctx.translate((square.x + square.w / 2) * scale, (square.y + square.h / 2) * scale);
    ctx.rotate((angle * Math.PI) / 180);
    ctx.drawImage(map, (-square.w / 2) * scale, (-square.h / 2) * scale, square.w * scale, square.h * scale);
    ctx.restore();
  }
  const side = Math.max(canvas.width, canvas.height);
  const line = Math.max(2 / shown, Math.round(side / 250));
  const size = Math.round(Math.max(side / 40, 13 / shown)); // a label of at least 13 CSS pixels
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  answer.faces.forEach((face, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const [x, y, w, h] = [face.box.x * scale, face.box.y * scale, face.box.w * scale, face.box.h * scale];
    ctx.lineWidth = line;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    const label = `${i + 1} ${face.emotion} ${Math.round(100 * face.probabilities[face.emotion])}%`;
    const tagWidth = ctx.measureText(label).width + size * 0.6;
    const tagHeight = size * 1.4;
    const top = y >= tagHeight ? y - tagHeight : Math.min(y + h, canvas.height - tagHeight);
    const left = Math.max(0, Math.min(x - line / 2, canvas.width - tagWidth));
    ctx.fillStyle = colour;
    ctx.fillRect(left, top, tagWidth, tagHeight);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, left + size * 0.3, top + size * 0.2);
  });
  const found = answer.faces.map((face, i) => `face ${i + 1}: ${face.emotion}`).join(", ");
  canvas.setAttribute("aria-label", found ? `the image, ${found}` : "the image: no face found");
}

function faceCard(face, i, classes) {
  const card = document.createElement("li");
  card.className = "face";
  card.dataset.emotion = face.emotion;
  card.style.setProperty("--colour", COLOURS[i % COLOURS.length]);
  const title = document.createElement("h2");
  const name = document.createElement("span");
  name.className = "emotion";
  name.textContent = face.emotion;
  title.append(`Face ${i + 1}: `, name, ` ${percent(face.probabilities[face.emotion])}`);
  card.append(title);
  for (const emotion of classes) {
    const p = face.probabilities[emotion];
    const row = document.createElement("div");
    row.className = emotion === face.emotion ? "row top" : "row";
    row.dataset.emotion = emotion;
    row.dataset.p = String(p);
    const label = document.createElement("span");
    label.textContent = emotion;
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("role", "meter");
    track.setAttribute("aria-label", emotion);
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", (100 * p).toFixed(1));
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(100 * p).toFixed(2)}%`;
    track.append(bar);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(p);
    row.append(label, track, value);
    card.append(row);
  }
  return card;
}

function list(answer) {
  const classes = state.health ? state.health.classes : Object.keys(answer.faces[0]?.probabilities || {});
  const items = answer.faces.map((face, i) => faceCard(face, i, classes));
  if (!items.length) {
    const empty = document.createElement("li");
    empty.className = "empty";
    let note = answer.note || "no face found";
    if (note.includes("face crop") && !answer.whole) {
      note = `no face found in what looks like a face crop: tick "Whole image is one face" to take it as one`;
    }
    empty.textContent = `${note[0].toUpperCase()}${note.slice(1)}.`;
    items.push(empty);
  }
  $("faces").replaceChildren(...items);
  $("caption").textContent = `${answer.width}x${answer.height} pixels, ${answer.ms} ms on the server`;
}

async function showPhoto(blob) {
  const limit = state.health ? state.health.max_upload_mb : Infinity;
  if (blob.size > limit * 2 ** 20) {
    say(`That file is ${(blob.size / 2 ** 20).toFixed(1)} MB: this server takes up to ${limit} MB.`, true);
    return;
  }
  say("Looking for faces\u2026");
  try {
    const answer = await predict(blob); // the server first: its one line says what is wrong with a file
    const picture = await createImageBitmap(blob, { imageOrientation: "from-image" })
      .catch(() => loadImage(URL.createObjectURL(blob)))
      .catch(() => null); // a format the server reads and this browser does not show (TIFF): the bars alone
    $("figure").hidden = !picture;
    if (picture) await draw(picture, answer);
    list(answer);
    state.blob = blob; // sent again when the Grad-CAM box changes
    const n = answer.faces.length;
    say(n ? `${n} face${n > 1 ? "s" : ""} found.` : "No face found.");
  } catch (error) {
    say(error.message, true);
  }
}

async function sendFrame() {
  const video = state.camera && state.camera.video;
  if (!video || state.busy || !video.videoWidth) return;
  state.busy = true;
  try {
    const frame = document.createElement("canvas");
    frame.width = video.videoWidth;
    frame.height = video.videoHeight;
    frame.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.9));
    const answer = await predict(blob);
    await draw(frame, answer);
    list(answer);
    state.blob = blob;
    say(`Camera: ${answer.faces.length} face${answer.faces.length === 1 ? "" : "s"} (${answer.ms} ms).`);
  } catch (error) {
    say(error.message, true);
  } finally {
    state.busy = false;
  }
}

function stopCamera() {
  if (!state.camera) return;
  clearInterval(state.timer);
  state.camera.stream.getTracks().forEach((track) => track.stop());
  state.camera = null;
  $("camera").setAttribute("aria-pressed", "false");
  $("camera").textContent = "Use the camera";
}

async function toggleCamera() {
  if (state.camera) {
    stopCamera();
    say("Camera off.");
    return;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("This browser gives no camera here: it needs https, or the page opened as localhost.", true);
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    await video.play();
    state.camera = { stream, video };
    $("camera").setAttribute("aria-pressed", "true");
    $("camera").textContent = "Stop the camera";
    say("Camera on.");
    state.timer = setInterval(sendFrame, state.health ? state.health.camera_every_ms : 500);
  } catch (error) {
    say(`No camera: ${error.message}`, true);
  }
}

async function start() {
  $("camera").setAttribute("aria-pressed", "false");
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) {
      stopCamera();
      showPhoto(file);
    }
    $("file").value = "";
  });
  $("camera").addEventListener("click", toggleCamera);
  for (const choice of ["explain", "whole"]) {
    $(choice).addEventListener("change", () => {
      if (state.blob && !state.camera) showPhoto(state.blob);
    });
  }
  try {
    const response = await fetch("/health");
    state.health = await response.json();
    const h = state.health;
    $("model").textContent = `Model ${h.model}, detector ${h.detector || "none (each image is one face)"}, fer-lightning ${h.version}`;
    $("explain-choice").hidden = !h.explain;
    $("whole-choice").hidden = !h.detector;  // a server without a detector takes every image whole already
  } catch (error) {
    say(`The server does not answer: ${error.message}`, true);
  }
  document.body.dataset.ready = "true";
}

start();
