// lgdk app: the page's logic. Talks to the JSON API of lgdk.app.server; frames are named
// by number, the session id is this page's own.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128],
                 [128, 0, 128], [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0]];
const state = { sid: null, video: 0, frames: 0, index: 0, fps: 12, object: 1,
                playing: false, busy: false, drag: null, doubts: [], worst: [] };
const images = { frame: new Image(), mask: new Image() };

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function api(path, options = {}) {
  const response = await fetch(`/api/${state.sid}${path}`, options);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}),
                                         headers: { "Content-Type": "application/json" } });

function colour(id) {  // the DAVIS colour brightened, as the server draws masks
  const c = PALETTE[id % PALETTE.length].map((v) => Math.min(255, 2 * v));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function setInfo(info) {
  if (info.video !== state.video) { state.doubts = []; state.worst = []; }
  state.frames = info.frames;
  state.video = info.video;  // part of frame URLs: a new video never shows cached frames
  state.fps = info.fps || 12;
  canvas.width = info.width;
  canvas.height = info.height;
  $("slider").max = Math.max(0, info.frames - 1);
  $("info").textContent = `${info.frames} frames, ${info.width}x${info.height}`;
  const select = $("object");
  const ids = new Set(info.objects.concat([state.object]));
  select.innerHTML = "";
  for (const id of [...ids].sort((a, b) => a - b)) {
    const option = document.createElement("option");
    option.value = id;
    option.textContent = `object ${id}`;
    select.appendChild(option);
  }
  select.value = state.object;
  $("swatch").style.background = colour(state.object);
}

function load(image, url) {
  return new Promise((resolve, reject) => {
    image.onload = resolve;
    image.onerror = () => reject(new Error(`could not load ${url}`));
    image.src = url;
  });
}

async function show(index, fresh = true) {
  state.index = index;
  $("slider").value = index;
  $("frame-number").textContent = `frame ${index}`;
  drawStrip();
  const stamp = fresh ? `?t=${Date.now()}` : "";
  await Promise.all([load(images.frame, `/api/${state.sid}/frame/${index}.jpg?v=${state.video}`),
                     load(images.mask, `/api/${state.sid}/mask/${index}.png${stamp}`)]);
  draw();
}

function draw() {
  ctx.drawImage(images.frame, 0, 0);
  ctx.drawImage(images.mask, 0, 0);
  const d = state.drag;
  if (d && d.tool === "box") {
    ctx.strokeStyle = colour(state.object);
    ctx.lineWidth = 2;
    ctx.strokeRect(d.x0, d.y0, d.x1 - d.x0, d.y1 - d.y0);
  } else if (d && d.points.length) {
    ctx.fillStyle = d.tool === "eraser" ? "rgba(255,255,255,.6)" : colour(state.object);
    for (const [x, y] of d.points) {
      ctx.beginPath();
      ctx.arc(x, y, d.radius, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

function tool() {
  return document.querySelector("input[name=tool]:checked").value;
}

function position(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

async function edit(request) {
  if (state.busy) return;
  state.busy = true;
  status("working...");
  try {
    setInfo(await request());
    await show(state.index);
    await loadDoubts();  // an edited frame is given now: sure
    status("");
  } catch (error) {
    status(error.message, true);
    await show(state.index);
  } finally {
    state.busy = false;
  }
}

canvas.addEventListener("pointerdown", (event) => {
  if (state.busy || state.playing) return;
  const [x, y] = position(event);
  const t = tool();
  const scale = canvas.width / canvas.getBoundingClientRect().width;
  if (t === "positive" || t === "negative") {
    edit(() => post("/click", { frame: state.index, object: state.object, x, y,
                                positive: t === "positive" }));
    return;
  }
  canvas.setPointerCapture(event.pointerId);
  state.drag = { tool: t, x0: x, y0: y, x1: x, y1: y, points: t === "box" ? [] : [[x, y]],
                 radius: Number($("radius").value) * scale };
});

canvas.addEventListener("pointermove", (event) => {
  const d = state.drag;
  if (!d) return;
  const [x, y] = position(event);
  if (d.tool === "box") { d.x1 = x; d.y1 = y; } else { d.points.push([x, y]); }
  draw();
});

canvas.addEventListener("pointerup", () => {
  const d = state.drag;
  state.drag = null;
  if (!d) return;
  if (d.tool === "box") {
    const box = [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1),
                 Math.max(d.y0, d.y1)];
    edit(() => post("/box", { frame: state.index, object: state.object, box }));
  } else {
    edit(() => post("/paint", { frame: state.index, object: state.object, points: d.points,
                                radius: d.radius, erase: d.tool === "eraser" }));
  }
});

$("object").addEventListener("change", () => {
  state.object = Number($("object").value);
  $("swatch").style.background = colour(state.object);
});

$("new-object").addEventListener("click", async () => {
  try {
    state.object = (await post("/object")).object;
    setInfo(currentInfo());
  } catch (error) {
    status(error.message, true);
  }
});

function currentInfo() {
  return { frames: state.frames, fps: state.fps, width: canvas.width, height: canvas.height,
           video: state.video, objects: [...$("object").options].map((o) => Number(o.value)) };
}

$("clear").addEventListener("click", () => edit(() => post("/clear", { frame: state.index })));
$("slider").addEventListener("input", () => show(Number($("slider").value)).catch(
  (e) => status(e.message, true)));

$("play").addEventListener("click", async () => {
  if (state.playing) { state.playing = false; return; }
  state.playing = true;
  $("play").textContent = "Pause";
  const start = state.index >= state.frames - 1 ? 0 : state.index;
  for (let i = start; i < state.frames && state.playing; i++) {
    const shown = Date.now();
    await show(i);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 / state.fps - (Date.now() - shown))));
  }
  state.playing = false;
  $("play").textContent = "Play";
});

$("propagate").addEventListener("click", async () => {
  try {
    await post("/propagate");
  } catch (error) {
    status(error.message, true);
    return;
  }
  $("propagate").disabled = true;
  $("cancel").disabled = false;
  status("propagating...");
  const poll = async () => {
    let p;
    try {
      p = await api("/progress");
    } catch (error) {
      status(error.message, true);
      return;
    }
    $("progress").max = Math.max(1, p.total);
    $("progress").value = p.done;
    $("progress-text").textContent = p.queued
      ? `waiting for its turn: ${p.queued === 1 ? "next" : `number ${p.queued}`} in the queue ` +
        "(other pages are propagating)"
      : `${p.done}/${p.total} frames, ${p.fps.toFixed(1)} frames/s`;
    if (p.running) { setTimeout(poll, 300); return; }
    $("propagate").disabled = false;
    $("cancel").disabled = true;
    if (p.error) status(p.error, true);
    else status(p.cancelled ? `cancelled: ${p.done} frames done, kept` : "propagated");
    await show(state.index);
    await loadDoubts();
  };
  poll();
});

async function loadDoubts() {  // the strip: each frame's doubt, red where to check
  const d = await api("/doubt").catch(() => ({ frames: [], worst: [] }));
  state.doubts = d.frames;
  state.worst = d.worst;
  drawStrip();
}

function drawStrip() {
  const strip = $("strip");
  const c = strip.getContext("2d");
  c.clearRect(0, 0, strip.width, strip.height);
  const n = Math.max(1, state.frames);
  for (const f of state.doubts) {
    const red = Math.round(255 * Math.min(1, 2 * f.doubt));
    c.fillStyle = f.why === "given" ? "#3a7" : `rgb(${red},${255 - red},80)`;
    const x0 = Math.floor((f.frame * strip.width) / n);
    const x1 = Math.floor(((f.frame + 1) * strip.width) / n);
    c.fillRect(x0, 0, Math.max(1, x1 - x0), strip.height);
  }
  c.fillStyle = "#000";
  c.fillRect(Math.floor(((state.index + 0.5) * strip.width) / n) - 1, 0, 2, strip.height);
  $("next-doubt").disabled = state.worst.length === 0;
  const worst = state.doubts[state.worst[0]];
  $("doubt-text").textContent = worst
    ? `least sure: frame ${worst.frame} (object ${worst.object}, ${worst.why})` : "";
}

$("strip").addEventListener("click", (event) => {
  const rect = $("strip").getBoundingClientRect();
  const index = Math.floor(((event.clientX - rect.left) / rect.width) * state.frames);
  show(Math.max(0, Math.min(state.frames - 1, index))).catch((e) => status(e.message, true));
});

$("next-doubt").addEventListener("click", () => {
  // the most doubtful frame not shown now, else the most doubtful one
  const next = state.worst.find((i) => i !== state.index) ?? state.worst[0];
  if (next !== undefined) show(next).catch((e) => status(e.message, true));
});

$("cancel").addEventListener("click", () => post("/cancel").catch((e) => status(e.message, true)));

$("upload").addEventListener("click", async () => {
  const file = $("file").files[0];
  if (!file) { status("choose a video or a zip of frames first", true); return; }
  const form = new FormData();
  form.append("file", file);
  status(`uploading ${file.name}...`);
  try {
    state.object = 1;
    setInfo(await api("/upload", { method: "POST", body: form }));
    await show(0);
    status(`${file.name} loaded`);
  } catch (error) {
    status(error.message, true);
  }
});

for (const button of document.querySelectorAll("button[data-kind]")) {
  button.addEventListener("click", async () => {
    const kind = button.dataset.kind;
    let query = "";
    if (button.dataset.colour) {
      const hex = $("colour").value;
      query = `?background=${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(",")}`;
    }
    status(`preparing ${kind}...`);
    try {
      const response = await fetch(`/api/${state.sid}/download/${kind}${query}`);
      if (!response.ok) throw new Error((await response.json()).error);
      const name = (response.headers.get("content-disposition") || "").match(/filename="?([^";]+)/);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = name ? name[1] : kind;
      document.body.appendChild(link);
      link.click();
      link.remove();
      status(`downloaded ${link.download}`);
    } catch (error) {
      status(error.message, true);
    }
  });
}

window.addEventListener("pagehide", () => {
  if (state.sid) navigator.sendBeacon(`/api/${state.sid}/close`);
});

(async () => {
  try {
    const response = await fetch("/api/session", { method: "POST" });
    const info = await response.json();
    if (!response.ok) throw new Error(info.error);
    state.sid = info.session;
    document.body.dataset.session = info.session;
    setInfo(info);
    await show(0);
    status("the demo clip: draw a box around an object, or upload your own video");
  } catch (error) {
    status(`could not start: ${error.message}`, true);
  }
})();
