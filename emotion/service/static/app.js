// The page of `python -m emotion.serve`: plain JS, no build step, nothing loaded from elsewhere.
"use strict";

const COLORS = {angry: "#e53935", disgust: "#8e24aa", fear: "#5e35b1", happy: "#fdd835",
                sad: "#1e88e5", surprise: "#fb8c00", neutral: "#90a4ae", uncertain: "#d0d0d0"};
const $ = (id) => document.getElementById(id);
const photo = $("photo"), video = $("video"), overlay = $("overlay"), facesBox = $("faces");
let streaming = null;
let lastBlob = null;  // the photo on show, sent again with explain=1 when a face is clicked

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function predict(blob, explain = false) {
  const form = new FormData();
  form.append("file", blob, "upload");
  const query = "crops=true" + ($("tta").checked ? "&tta=flip" : "") + (explain ? "&explain=1" : "");
  const response = await fetch("predict?" + query, {method: "POST", body: form});
  const body = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function draw(result, shown) {
  const [w, h] = result.size;
  overlay.width = shown.clientWidth;
  overlay.height = shown.clientHeight;
  const sx = overlay.width / w, sy = overlay.height / h;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  ctx.lineWidth = 2;
  ctx.font = "bold 14px system-ui, sans-serif";
  result.faces.forEach((face, i) => {
    const [x1, y1, x2, y2] = face.box;
    const color = COLORS[face.label] || "#fff";
    ctx.strokeStyle = color;
    ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    const tag = `${i + 1} ${tagOf(face)}`;
    const tw = ctx.measureText(tag).width + 8;
    ctx.fillStyle = color;
    ctx.fillRect(x1 * sx, Math.max(0, y1 * sy - 20), tw, 20);
    ctx.fillStyle = "#000";
    ctx.fillText(tag, x1 * sx + 4, Math.max(15, y1 * sy - 5));
  });
}

function tagOf(face) {  // "happy 93%", or "? (happy 41%)" for a face held back
  const p = `${face.predicted} ${Math.round(face.probabilities[face.predicted] * 100)}%`;
  return face.label === "uncertain" ? `? (${p})` : p;
}

async function explainFaces() {  // one request for every face's saliency overlay, shown in place of the crops
  if (!lastBlob || document.body.dataset.explained) return;
  setStatus("Explaining…");
  try {
    const body = await predict(lastBlob, true);
    document.querySelectorAll(".face").forEach((card, i) => {
      const face = body.faces[i];
      if (!face || !face.explanation) return;
      card.dataset.crop = card.querySelector("img").src;
      card.dataset.explanation = face.explanation;
    });
    document.body.dataset.explained = "1";
    setStatus("Click a face to switch between the face and where the model looked.");
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function toggleExplanation(card) {
  await explainFaces();
  if (!card.dataset.explanation) return;
  const img = card.querySelector("img");
  const showing = img.src === card.dataset.explanation;
  img.src = showing ? card.dataset.crop : card.dataset.explanation;
  card.classList.toggle("explained", !showing);
}

function listFaces(result) {
  facesBox.replaceChildren(...result.faces.map((face, i) => {
    const card = document.createElement("div");
    card.className = face.label === "uncertain" ? "face uncertain" : "face";
    card.title = "click: where the model looked";
    card.addEventListener("click", () => toggleExplanation(card));
    const img = document.createElement("img");
    img.alt = `face ${i + 1}`;
    if (face.crop_png) img.src = "data:image/png;base64," + face.crop_png;
    const info = document.createElement("div");
    const label = document.createElement("div");
    label.className = "label";
    label.dataset.label = face.label;
    label.textContent = `${i + 1}. ${face.label}` + (face.uncertain ? ` (${face.uncertain}: ${face.predicted}?)` : "");
    const quality = document.createElement("div");
    quality.className = "quality";
    if (face.quality) {
      const q = face.quality;
      quality.textContent = `quality ${q.overall.toFixed(2)} · ${Math.round(q.size_px)} px` +
                            (q.yaw === null ? "" : ` · yaw ${Math.round(q.yaw)}°`);
    }
    info.append(label, quality);
    for (const [name, p] of Object.entries(face.probabilities)) {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.innerHTML = `<b>${name}</b><i style="width:${Math.round(p * 120)}px;background:${COLORS[name]}"></i>` +
                      `${(p * 100).toFixed(1)}%`;
      info.append(bar);
    }
    card.append(img, info);
    return card;
  }));
}

function show(result, shown, prefix = "") {
  draw(result, shown);
  listFaces(result);
  const n = result.faces.length;
  setStatus(`${prefix}${n} face${n === 1 ? "" : "s"} found in ${result.time_ms} ms.` +
            (n && !prefix ? " Click a face to see where the model looked." : ""));
  document.body.dataset.faces = String(n);
}

const VIDEO_NAME = /\.(mp4|avi|mov|mkv|webm|m4v|mpe?g|wmv|flv)$/i;

async function analyseVideo(file) {  // a job: POST /predict/video, then GET /jobs/{id} until it is done
  const box = $("videoResult"), bar = $("progress"), tbody = $("tracks").querySelector("tbody");
  box.hidden = false;
  $("timeline").hidden = true;
  tbody.replaceChildren();
  bar.value = 0;
  document.body.dataset.tracks = "";
  photo.removeAttribute("src");
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  facesBox.replaceChildren();
  setStatus("Uploading the video…");
  try {
    const form = new FormData();
    form.append("file", file, file.name || "upload");
    const queued = await fetch("predict/video", {method: "POST", body: form});
    const job = await queued.json().catch(() => ({error: `HTTP ${queued.status}`}));
    if (!queued.ok) throw new Error(job.error || `HTTP ${queued.status}`);
    let status = job;
    while (status.state !== "done") {
      await new Promise((resolve) => setTimeout(resolve, 400));
      const response = await fetch(`jobs/${job.id}`);
      status = await response.json();
      if (!response.ok || status.state === "error") throw new Error(status.error || `HTTP ${response.status}`);
      bar.max = status.frames_total || Math.max(status.frames_done, 1);
      bar.value = status.frames_done;
      setStatus(`Analysing: ${status.frames_done} of ${status.frames_total || "?"} frames…`);
    }
    bar.value = bar.max;
    const timeline = $("timeline");
    timeline.src = `jobs/${job.id}/timeline.png`;
    await timeline.decode().catch(() => {});
    timeline.hidden = false;
    tbody.replaceChildren(...status.tracks.map((t) => {
      const row = document.createElement("tr");
      const segments = t.segments.map((s) => `${s.label} ${s.start_s.toFixed(1)}–${s.end_s.toFixed(1)} s`).join("; ");
      for (const text of [`#${t.track}`, t.dominant, `${(t.last_s - t.first_s).toFixed(1)} s`, t.frames, segments]) {
        const cell = document.createElement("td");
        cell.textContent = String(text);
        row.append(cell);
      }
      return row;
    }));
    setStatus(`${status.results.length} frames analysed, ${status.tracks.length} ` +
              `${status.tracks.length === 1 ? "person" : "people"} tracked.`);
    document.body.dataset.tracks = String(status.tracks.length);
  } catch (error) {
    setStatus(error.message, true);
    document.body.dataset.tracks = "error";
  }
}

async function analyseFile(file) {
  if (!file) return;
  stopWebcam();
  if ((file.type || "").startsWith("video/") || VIDEO_NAME.test(file.name || "")) return analyseVideo(file);
  $("videoResult").hidden = true;
  setStatus("Analysing…");
  document.body.dataset.faces = "";
  delete document.body.dataset.explained;
  lastBlob = file;
  photo.src = URL.createObjectURL(file);
  await photo.decode().catch(() => {});
  try {
    show(await predict(file), photo);
  } catch (error) {
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    facesBox.replaceChildren();
    setStatus(error.message, true);
    document.body.dataset.faces = "error";
  }
}

function stopWebcam() {
  if (!streaming) return;
  streaming.getTracks().forEach((t) => t.stop());
  streaming = null;
  video.style.display = "none";
  photo.style.display = "block";
  $("webcam").textContent = "Use webcam";
}

async function webcamLoop() {
  const canvas = document.createElement("canvas");
  while (streaming) {
    if (video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
      try {
        lastBlob = null;  // a webcam frame is gone by the time of a click
        if (streaming) show(await predict(blob), video, "Webcam: ");
      } catch (error) {
        setStatus(error.message, true);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

$("webcam").addEventListener("click", async () => {
  if (streaming) return stopWebcam();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return setStatus("This browser gives no camera here (it needs https or localhost).", true);
  }
  try {
    streaming = await navigator.mediaDevices.getUserMedia({video: true});
  } catch (error) {
    return setStatus(`No camera: ${error.message}`, true);
  }
  video.srcObject = streaming;
  video.style.display = "block";
  photo.style.display = "none";
  $("webcam").textContent = "Stop webcam";
  webcamLoop();
});

$("file").addEventListener("change", (e) => analyseFile(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  analyseFile(e.dataTransfer.files[0]);
});
