// WebXR for the nuReality page: an "Enter VR" button when the browser offers immersive-vr, controller
// triggers as the response key, and an in-world panel for the prompts (the page's HTML is not visible inside
// a headset).  From the publications: the study is run in VR (Schmitt et al. 2022).  Our reconstruction
// (assumption): the floor-level reference space placed at the kerb, the trigger as the "safe to cross"
// response, and the panel layout below.
import * as THREE from "three";

import { LAYOUT } from "./scene.js";

// Panel layout in normalised panel coordinates (u right, v up, both 0..1): title and text on top, one row of
// buttons below.  Pure function, so the hit test is the same as what is drawn.
export function panelLayout(options) {
  const n = Math.max(1, options.length);
  const gap = 0.02, margin = 0.05;
  const w = Math.min(0.3, (1 - 2 * margin - gap * (n - 1)) / n);
  const total = n * w + (n - 1) * gap;
  const u0 = (1 - total) / 2;
  return options.map((opt, i) => {
    const left = u0 + i * (w + gap);
    return { value: opt.value, label: opt.label, u0: left, u1: left + w, v0: 0.1, v1: 0.34 };
  });
}

export function panelHit(layout, u, v) {
  const b = layout.find((r) => u >= r.u0 && u <= r.u1 && v >= r.v0 && v <= r.v1);
  return b ? b.value : undefined;
}

export function createXR(renderer, world, { button, onSelect } = {}) {
  const W = 1024, H = 512;
  const canvas = document.createElement("canvas");
  canvas.width = W;
  canvas.height = H;
  const tex = new THREE.CanvasTexture(canvas);
  tex.colorSpace = THREE.SRGBColorSpace;
  const panelMat = new THREE.MeshBasicMaterial({ map: tex, transparent: true });
  const panel = new THREE.Mesh(new THREE.PlaneGeometry(1.2, 0.6), panelMat);
  panel.visible = false;
  panel.position.set(0, 1.45, -1.4);
  world.rig.add(panel);
  let current = null;  // {layout, resolve}

  function draw(spec, layout) {
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, W, H);
    g.fillStyle = "rgba(18,22,28,0.88)";
    g.fillRect(0, 0, W, H);
    g.fillStyle = "#ffffff";
    g.font = "bold 44px sans-serif";
    g.textAlign = "center";
    g.fillText(spec.title || "", W / 2, 70);
    g.font = "34px sans-serif";
    wrap(g, spec.text || "", W / 2, 130, W - 80, 42);
    for (const b of layout) {
      const x = b.u0 * W, y = (1 - b.v1) * H, w = (b.u1 - b.u0) * W, h = (b.v1 - b.v0) * H;
      g.fillStyle = "#2f6fd6";
      g.fillRect(x, y, w, h);
      g.fillStyle = "#ffffff";
      g.font = "bold 36px sans-serif";
      g.fillText(String(b.label), x + w / 2, y + h / 2 + 12);
    }
    if (spec.anchors) {
      g.font = "26px sans-serif";
      g.textAlign = "left";
      g.fillText(spec.anchors[0], layout[0].u0 * W, H - 18);
      g.textAlign = "right";
      g.fillText(spec.anchors[1], layout[layout.length - 1].u1 * W, H - 18);
    }
    tex.needsUpdate = true;
  }

  function wrap(g, text, x, y, maxW, lineH) {
    let line = "";
    for (const word of text.split(/\s+/)) {
      const tryLine = line ? line + " " + word : word;
      if (g.measureText(tryLine).width > maxW && line) { g.fillText(line, x, y); y += lineH; line = word; }
      else line = tryLine;
    }
    if (line) g.fillText(line, x, y);
  }

  // Show a prompt in the headset; resolves through answer() (a controller hit on a button).
  function show(spec, resolve) {
    const layout = panelLayout(spec.options);
    draw(spec, layout);
    panel.visible = true;
    current = { layout, resolve };
  }

  function hide() {
    panel.visible = false;
    current = null;
  }

  const raycaster = new THREE.Raycaster();
  const tmp = new THREE.Matrix4();
  const controllers = [0, 1].map((i) => {
    const c = renderer.xr.getController(i);
    const rayGeo = new THREE.BufferGeometry().setFromPoints([new THREE.Vector3(0, 0, 0), new THREE.Vector3(0, 0, -3)]);
    const ray = new THREE.Line(rayGeo, new THREE.LineBasicMaterial({ color: 0xffffff }));
    c.add(ray);
    c.addEventListener("select", () => {
      const t = performance.now();
      if (current) {
        tmp.identity().extractRotation(c.matrixWorld);
        raycaster.ray.origin.setFromMatrixPosition(c.matrixWorld);
        raycaster.ray.direction.set(0, 0, -1).applyMatrix4(tmp);
        const hit = raycaster.intersectObject(panel)[0];
        const value = hit && hit.uv ? panelHit(current.layout, hit.uv.x, hit.uv.y) : undefined;
        if (value !== undefined) { current.resolve(value); return; }
        if (current.layout.length === 1) { current.resolve(current.layout[0].value); return; }  // "ready": any trigger
        return;
      }
      if (onSelect) onSelect(t);
    });
    world.rig.add(c);
    return c;
  });

  let supported = false;
  async function detect() {
    if (!navigator.xr || !navigator.xr.isSessionSupported) return false;
    try { supported = await navigator.xr.isSessionSupported("immersive-vr"); } catch (_e) { supported = false; }
    if (supported) renderer.xr.enabled = true;
    if (supported && button) {
      button.hidden = false;
      button.addEventListener("click", enter);
    }
    return supported;
  }

  async function enter() {
    if (renderer.xr.isPresenting) return;
    const session = await navigator.xr.requestSession("immersive-vr",
      { optionalFeatures: ["local-floor", "bounded-floor"] });
    renderer.xr.setReferenceSpaceType("local-floor");
    await renderer.xr.setSession(session);
    world.camera.position.set(0, 0, 0);   // the headset pose (relative to the rig, floor level) takes over
    world.camera.rotation.set(0, 0, 0);
    session.addEventListener("end", () => {
      world.camera.position.set(0, LAYOUT.eyeHeight, 0);
    });
  }

  return { detect, show, hide, controllers, panel, get supported() { return supported; },
    get presenting() { return !!renderer.xr.isPresenting; } };
}
