// The page of python -m predict.serve: photo, video and camera tabs over the server's JSON API.
"use strict";

const PALETTE = ["#d62728", "#8c564b", "#9467bd", "#1f77b4", "#2ca02c", "#ff7f0e", "#7f7f7f", "#e377c2"];
const TIMELINE_SECONDS = 60;
let classes = [];

const $ = (id) => document.getElementById(id);
const colour = (name) => PALETTE[Math.max(0, classes.indexOf(name)) % PALETTE.length];
const percent = (p) => `${Math.round(p * 100)}%`;

async function api(url, options) {
  // fetch + JSON; a refusal becomes an Error with the server's one-line message
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function bars(values, highlight) {
  // one row per class: name, bar, percentage
  const rows = classes.map((name) => {
    const p = values[name] || 0;
    const top = name === highlight ? " top" : "";
    return `<div class="bar${top}"><span>${name}</span><span class="track">` +
      `<span class="fill" style="display:block;width:${(p * 100).toFixed(1)}%;background:${colour(name)}"></span>` +
      `</span><span class="value">${percent(p)}</span></div>`;
  });
  return rows.join("");
}

function card(title, values, highlight) {
  const div = document.createElement("div");
  div.className = "card";
  div.innerHTML = `<h4></h4>${bars(values, highlight)}`;
  div.querySelector("h4").textContent = title;
  return div;
}

function showError(id, error) {
  $(id).textContent = error ? String(error.message || error) : "";
}

function dropZone(zone, input, handle) {
  input.addEventListener("change", () => input.files[0] && handle(input.files[0]));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files[0]) handle(event.dataTransfer.files[0]);
  });
}

// Photo: upload, then the annotated picture and a bar chart per face.
async function labelPhoto(file) {
  showError("photo-error");
  $("photo-result").hidden = true;
  const form = new FormData();
  form.append("file", file);
  try {
    const result = await api("/api/photo", { method: "POST", body: form });
    $("photo-image").src = `${result.annotated}?t=${Date.now()}`;
    const faces = $("photo-faces");
    faces.replaceChildren();
    if (!result.faces.length) faces.append(Object.assign(document.createElement("p"), { textContent: "No face found." }));
    result.faces.forEach((face, i) => {
      faces.append(card(`Face ${i + 1}: ${face.label} ${percent(face.probability)}`, face.probabilities, face.label));
    });
    $("photo-result").hidden = false;
  } catch (error) {
    showError("photo-error", error);
  } finally {
    $("photo-file").value = "";
  }
}

// Video: upload with progress, then poll the job until the annotated video and summary exist.
function uploadVideo(file) {
  showError("video-error");
  $("video-result").hidden = true;
  $("video-progress").hidden = false;
  const form = new FormData();
  form.append("file", file);
  const request = new XMLHttpRequest();
  request.open("POST", "/api/video");
  request.upload.onprogress = (event) => {
    $("video-bar").value = event.lengthComputable ? event.loaded / event.total : 0;
    $("video-status").textContent = "uploading";
  };
  request.onload = () => {
    const body = JSON.parse(request.responseText || "{}");
    if (request.status !== 200) return videoFailed(body.error || request.statusText);
    pollJob(body.url);
  };
  request.onerror = () => videoFailed("the upload failed (connection lost)");
  request.send(form);
  $("video-file").value = "";
}

function videoFailed(message) {
  $("video-progress").hidden = true;
  showError("video-error", message);
}

async function pollJob(url) {
  let job;
  try {
    job = await api(url);
  } catch (error) {
    return videoFailed(error);
  }
  if (job.state === "failed") return videoFailed(job.error);
  $("video-bar").value = job.total ? job.frames / job.total : 0;
  $("video-status").textContent = job.state === "done" ? "done" :
    `labelling: ${job.frames}${job.total ? ` of ${job.total}` : ""} frames`;
  if (job.state !== "done") return setTimeout(() => pollJob(url), 400);
  $("video-player").src = job.files.video;
  $("video-timeline").src = job.files.timeline;
  const tracks = $("video-tracks");
  tracks.replaceChildren();
  if (!job.summary.tracks.length) tracks.append(Object.assign(document.createElement("p"), { textContent: "No face found." }));
  for (const track of job.summary.tracks) {
    const title = `Track ${track.track}: ${track.first_s}-${track.last_s} s, ${track.frames} frames, mostly ${track.dominant}`;
    tracks.append(card(title, track.shares, track.dominant));
  }
  $("video-files").innerHTML = ["video", "json", "csv", "timeline"]
    .map((key) => `<a href="${job.files[key]}" download>${key}</a>`).join("");
  $("video-result").hidden = false;
}

// Camera: frames go to the server one at a time; boxes, bars and the timeline follow its answers.
const camera = { stream: null, session: null, running: false, history: [] };

async function startCamera() {
  showError("camera-error");
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (error) {
    return showError("camera-error", `no camera: ${error.message || error}`);
  }
  const video = $("camera-video");
  video.srcObject = camera.stream;
  await video.play();
  camera.session = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
  camera.history = [];
  camera.running = true;
  $("camera-start").disabled = true;
  $("camera-stop").disabled = false;
  $("camera-save").disabled = false;
  $("camera-files").replaceChildren();
  labelFrames();
}

function stopCamera() {
  camera.running = false;
  if (camera.stream) camera.stream.getTracks().forEach((track) => track.stop());
  $("camera-start").disabled = false;
  $("camera-stop").disabled = true;
  $("camera-status").textContent = "stopped";
}

async function labelFrames() {
  const video = $("camera-video");
  const grab = document.createElement("canvas");
  const loop = (camera.loop = (camera.loop || 0) + 1); // a restart ends the previous loop
  let frames = 0;
  const started = performance.now();
  while (camera.running && camera.loop === loop) {
    if (!video.videoWidth) { await new Promise((r) => setTimeout(r, 50)); continue; }
    grab.width = video.videoWidth;
    grab.height = video.videoHeight;
    grab.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.85));
    try {
      const result = await api(`/api/frame?session=${camera.session}`, {
        method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" },
      });
      if (!camera.running || camera.loop !== loop) break;
      frames += 1;
      drawOverlay(result.faces, grab.width, grab.height);
      showTracks(result.faces);
      remember(result);
      drawTimeline();
      const seconds = (performance.now() - started) / 1000;
      $("camera-status").textContent = `live: ${(frames / seconds).toFixed(1)} frames/s`;
    } catch (error) {
      showError("camera-error", error);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function drawOverlay(faces, width, height) {
  const canvas = $("camera-overlay");
  const box = canvas.getBoundingClientRect();
  canvas.width = box.width * devicePixelRatio;
  canvas.height = box.height * devicePixelRatio;
  const context = canvas.getContext("2d");
  const scale = Math.min(canvas.width / width, canvas.height / height);
  const dx = (canvas.width - width * scale) / 2;
  const dy = (canvas.height - height * scale) / 2;
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (const face of faces) {
    const [x, y, w, h] = face.box.map((v) => v * scale);
    const text = `#${face.track} ${face.label} ${percent(face.probability)}`;
    context.lineWidth = Math.max(2, 3 * devicePixelRatio);
    context.strokeStyle = colour(face.label);
    context.strokeRect(dx + x, dy + y, w, h);
    context.font = `${Math.round(15 * devicePixelRatio)}px system-ui, sans-serif`;
    const textWidth = context.measureText(text).width + 10;
    const top = y > 24 * devicePixelRatio ? dy + y - 22 * devicePixelRatio : dy + y + h;
    context.fillStyle = colour(face.label);
    context.fillRect(dx + x, top, textWidth, 22 * devicePixelRatio);
    context.fillStyle = "#fff";
    context.fillText(text, dx + x + 5, top + 16 * devicePixelRatio);
  }
}

function showTracks(faces) {
  const list = $("camera-tracks");
  list.replaceChildren();
  if (!faces.length) list.append(Object.assign(document.createElement("p"), { textContent: "No face in view." }));
  for (const face of faces) list.append(card(`Track ${face.track}: ${face.label}`, face.probabilities, face.label));
}

function remember(result) {
  // the largest face's smoothed probabilities, kept for the last TIMELINE_SECONDS
  const main = result.faces.reduce((a, b) => (!a || b.box[2] * b.box[3] > a.box[2] * a.box[3] ? b : a), null);
  camera.history.push({ t: result.time_s, track: main && main.track, probabilities: main && main.probabilities });
  while (camera.history.length && camera.history[0].t < result.time_s - TIMELINE_SECONDS) camera.history.shift();
}

function drawTimeline() {
  const canvas = $("camera-timeline");
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  const left = 40, right = 110, top = 10, bottom = 24;
  const now = camera.history.length ? camera.history[camera.history.length - 1].t : 0;
  const x = (t) => left + (width - left - right) * (1 - (now - t) / TIMELINE_SECONDS);
  const y = (p) => top + (height - top - bottom) * (1 - p);
  context.clearRect(0, 0, width, height);
  context.strokeStyle = "#d9dde5";
  context.fillStyle = "#6b7280";
  context.font = "11px system-ui, sans-serif";
  for (const p of [0, 0.5, 1]) {
    context.beginPath(); context.moveTo(left, y(p)); context.lineTo(width - right, y(p)); context.stroke();
    context.fillText(percent(p), 4, y(p) + 4);
  }
  for (const s of [60, 45, 30, 15, 0]) context.fillText(s ? `-${s} s` : "now", x(now - s) - 12, height - 6);
  classes.forEach((name, i) => {
    context.strokeStyle = colour(name);
    context.lineWidth = 2;
    context.beginPath();
    let drawing = false;
    for (const point of camera.history) {
      if (!point.probabilities) { drawing = false; continue; }
      const px = x(point.t), py = y(point.probabilities[name]);
      if (drawing) context.lineTo(px, py); else context.moveTo(px, py);
      drawing = true;
    }
    context.stroke();
    context.fillStyle = colour(name);
    context.fillText(name, width - right + 10, top + 12 + i * 18);
  });
  const last = camera.history[camera.history.length - 1];
  $("camera-timeline-who").textContent = last && last.track ? `(largest face: track ${last.track})` : "";
}

async function saveSession() {
  showError("camera-error");
  try {
    const saved = await api(`/api/sessions/${camera.session}/save`, { method: "POST" });
    $("camera-files").innerHTML = "Saved: " + ["json", "csv", "timeline"]
      .map((key) => `<a href="${saved.files[key]}" download>${key}</a>`).join("");
  } catch (error) {
    showError("camera-error", error);
  }
}

function showTab(name) {
  if (!$(name) || !$(name).classList.contains("tab")) return;
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.id === name));
}

async function start() {
  const info = await api("/api/info");
  classes = info.classes;
  $("model").textContent = `model ${info.model.name} · ${classes.length} classes`;
  document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  dropZone($("photo-drop"), $("photo-file"), labelPhoto);
  dropZone($("video-drop"), $("video-file"), uploadVideo);
  $("camera-start").addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", stopCamera);
  $("camera-save").addEventListener("click", saveSession);
  window.addEventListener("hashchange", () => showTab(location.hash.slice(1) || "photo"));
  if (location.hash) showTab(location.hash.slice(1));
}

start().catch((error) => showError("photo-error", error));
