// The nuReality street scene in three.js: an urban intersection seen from the curb, built from primitives and
// canvas-generated textures (no image files), with the approaching vehicle driven by the scenario kinematics.
//
// From the publications (Schmitt et al. 2022, arXiv 2201.04742): an urban intersection with road and building
// texturing, parked cars and swaying tree limbs; a pedestrian waits to cross in front of an oncoming vehicle,
// and the vehicle may express its intent by motion (easing, stopping farther away, braking earlier/harder with
// a nose dive) and light.  Our reconstruction (assumption): every dimension below (lane widths, the 3 m
// crosswalk, the 1.65 m eye height, building sizes, the car model, the light bar on the roof and its 1.5 Hz
// pulse while yielding), the right-hand traffic and the layout of the blocks.
//
// World frame: y up, metres.  The main road runs along z; the vehicle drives towards +z in the lane at
// x = LAYOUT.laneX.  The crosswalk's near edge (the vehicle's side) is at z = 0, so a bumper-to-crosswalk
// distance x puts the front bumper at z = -x.  The pedestrian stands on the curb at (pedX, pedZ).
import * as THREE from "three";

export const LAYOUT = Object.freeze({
  roadHalf: 5.5,        // kerb to kerb 11 m: two 3.5 m travel lanes + two 2 m parking lanes
  laneEdge: 3.5,        // edge line between travel and parking lane
  laneX: -1.75,         // centre of the vehicle's lane (right-hand traffic, heading +z)
  crosswalkWidth: 3.0,  // along z, from the near edge z = 0
  crossRoadNear: 3.5,   // the cross street spans z in [3.5, 14.5]
  crossRoadFar: 14.5,
  sidewalk: 4.0,
  curb: 0.15,
  pedX: -5.9,           // on the kerb, 0.4 m back from the road edge
  pedZ: 1.5,            // in line with the middle of the crosswalk
  eyeHeight: 1.65,
  defaultYaw: -0.6,     // rad: looking up the road towards the oncoming vehicle, a little across
  wheelRadius: 0.33,
});

// ---- deterministic randomness (the scene is the same for every participant) ----

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- procedural textures ----

function canvasTexture(w, h, draw, repeat = [1, 1]) {
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  draw(c.getContext("2d"), w, h);
  const tex = new THREE.CanvasTexture(c);
  tex.wrapS = tex.wrapT = THREE.RepeatWrapping;
  tex.repeat.set(repeat[0], repeat[1]);
  tex.colorSpace = THREE.SRGBColorSpace;
  tex.anisotropy = 4;
  return tex;
}

function speckle(g, w, h, rnd, n, shades, size = 2) {
  for (let i = 0; i < n; i++) {
    const s = shades[Math.floor(rnd() * shades.length)];
    g.fillStyle = s;
    const x = Math.floor(rnd() * w), y = Math.floor(rnd() * h);
    g.fillRect(x, y, 1 + Math.floor(rnd() * size), 1 + Math.floor(rnd() * size));
  }
}

export function makeTextures(seed = 7) {
  const rnd = mulberry32(seed);
  const asphalt = canvasTexture(512, 512, (g, w, h) => {
    g.fillStyle = "#3b3c3f";
    g.fillRect(0, 0, w, h);
    for (let i = 0; i < 40; i++) {  // darker patches and repairs
      g.fillStyle = `rgba(20,20,22,${0.05 + rnd() * 0.08})`;
      g.beginPath();
      g.ellipse(rnd() * w, rnd() * h, 20 + rnd() * 70, 10 + rnd() * 40, rnd() * Math.PI, 0, 2 * Math.PI);
      g.fill();
    }
    speckle(g, w, h, rnd, 26000, ["#2c2d2f", "#494a4d", "#55565a", "#333436", "#606164"]);
    g.strokeStyle = "rgba(15,15,15,0.5)";  // a few cracks
    for (let i = 0; i < 6; i++) {
      g.lineWidth = 1 + rnd();
      g.beginPath();
      let x = rnd() * w, y = rnd() * h;
      g.moveTo(x, y);
      for (let k = 0; k < 8; k++) { x += (rnd() - 0.5) * 40; y += (rnd() - 0.5) * 40; g.lineTo(x, y); }
      g.stroke();
    }
  });
  const sidewalk = canvasTexture(256, 256, (g, w, h) => {
    g.fillStyle = "#b8b3a8";
    g.fillRect(0, 0, w, h);
    speckle(g, w, h, rnd, 9000, ["#aaa598", "#c4bfb4", "#9f9a8e", "#cfcabf"]);
    g.strokeStyle = "#8b867b";  // expansion joints: one slab = 1.5 m (texture repeat set by the caller)
    g.lineWidth = 3;
    g.strokeRect(1.5, 1.5, w - 3, h - 3);
    g.beginPath(); g.moveTo(w / 2, 0); g.lineTo(w / 2, h); g.moveTo(0, h / 2); g.lineTo(w, h / 2); g.stroke();
  });
  const paint = (color) => canvasTexture(64, 64, (g, w, h) => {
    g.fillStyle = color;
    g.fillRect(0, 0, w, h);
    speckle(g, w, h, rnd, 500, ["rgba(80,80,80,0.35)", "rgba(120,120,120,0.25)"], 3);  // worn paint
  });
  const facades = FACADE_STYLES.map((style) => canvasTexture(512, 512, (g, w, h) => drawFacade(g, w, h, style, rnd)));
  const sky = canvasTexture(16, 256, (g, w, h) => {
    const grad = g.createLinearGradient(0, 0, 0, h);
    grad.addColorStop(0, "#5f8fc4");
    grad.addColorStop(0.45, "#a9c7e6");
    grad.addColorStop(0.5, "#dfe6ea");
    grad.addColorStop(1, "#c9ccc8");
    g.fillStyle = grad;
    g.fillRect(0, 0, w, h);
  });
  sky.wrapS = sky.wrapT = THREE.ClampToEdgeWrapping;
  return { asphalt, sidewalk, white: paint("#e9e7df"), yellow: paint("#e0b12a"), facades, sky };
}

// A facade tile: 4 bays x 4 floors (each bay 3 m wide, each floor 3.2 m high), windows lit or dark at random.
const FACADE_STYLES = [
  { wall: "#9b5b45", trim: "#d8cdb8", glass: ["#27313d", "#34475b", "#c9b98a"] },  // brick
  { wall: "#c9c2b2", trim: "#8e877a", glass: ["#2f3a44", "#3f566a", "#d7c99a"] },  // limestone
  { wall: "#6f7a83", trim: "#3d444a", glass: ["#1f2a33", "#4a6a86", "#88a6bd"] },  // office glass
  { wall: "#d6b98c", trim: "#f1e8d6", glass: ["#2b2f36", "#445566", "#e8d9a8"] },  // sandstone
  { wall: "#7d3f36", trim: "#e2d6c4", glass: ["#262a30", "#3c4c5c", "#cbb27a"] },  // dark brick
];
export const FACADE_TILE = { bays: 4, floors: 4, bay: 3.0, floor: 3.2 };

function drawFacade(g, w, h, style, rnd) {
  g.fillStyle = style.wall;
  g.fillRect(0, 0, w, h);
  speckle(g, w, h, rnd, 6000, ["rgba(0,0,0,0.10)", "rgba(255,255,255,0.08)"]);
  const bw = w / FACADE_TILE.bays, fh = h / FACADE_TILE.floors;
  for (let f = 0; f < FACADE_TILE.floors; f++) {
    g.fillStyle = style.trim;  // floor band
    g.fillRect(0, f * fh + fh - 6, w, 6);
    for (let b = 0; b < FACADE_TILE.bays; b++) {
      const x = b * bw + bw * 0.2, y = f * fh + fh * 0.18, ww = bw * 0.6, wh = fh * 0.58;
      g.fillStyle = style.trim;
      g.fillRect(x - 4, y - 4, ww + 8, wh + 10);
      const glass = style.glass[Math.floor(rnd() * style.glass.length)];
      const grad = g.createLinearGradient(x, y, x + ww, y + wh);
      grad.addColorStop(0, glass);
      grad.addColorStop(1, "#11161b");
      g.fillStyle = grad;
      g.fillRect(x, y, ww, wh);
      g.fillStyle = style.trim;  // mullions
      g.fillRect(x + ww / 2 - 2, y, 4, wh);
      g.fillRect(x, y + wh * 0.4, ww, 3);
    }
  }
}

// ---- geometry helpers: static parts are merged into a few large meshes (one draw call per material) ----

// Scale a box's UVs so that a texture tile of tileU x tileV metres repeats at its true size on every side.
function scaleBoxUVs(geo, w, h, d, tileU, tileV) {
  const uv = geo.attributes.uv;
  const faces = [[d, h], [d, h], [w, d], [w, d], [w, h], [w, h]];  // +x, -x, +y, -y, +z, -z
  for (let f = 0; f < 6; f++) {
    const [fw, fh] = faces[f];
    for (let k = 0; k < 4; k++) {
      const i = f * 4 + k;
      uv.setXY(i, uv.getX(i) * fw / tileU, uv.getY(i) * fh / tileV);
    }
  }
  uv.needsUpdate = true;
  return geo;
}

function flatRect(w, d, tileU = w, tileV = d) {
  const geo = new THREE.PlaneGeometry(w, d);
  geo.rotateX(-Math.PI / 2);
  const uv = geo.attributes.uv;
  for (let i = 0; i < uv.count; i++) uv.setXY(i, uv.getX(i) * w / tileU, uv.getY(i) * d / tileV);
  return geo;
}

const M = (x, y, z, ry = 0) => new THREE.Matrix4().makeRotationY(ry).setPosition(x, y, z);

// Collects geometries (with a transform, a colour and per-part attribute values) and merges them into one
// non-indexed BufferGeometry with position, normal, uv, color and the extra attributes.
export class Batch {
  constructor(extra = {}) {
    this.parts = [];
    this.extra = extra;   // {name: itemSize}
  }

  add(geo, matrix = null, color = 0xffffff, values = {}) {
    this.parts.push({ geo, matrix, color: new THREE.Color(color), values });
    return this;
  }

  build() {
    const gs = this.parts.map((p) => {
      const g = p.geo.index ? p.geo.toNonIndexed() : p.geo.clone();
      if (p.matrix) g.applyMatrix4(p.matrix);
      return g;
    });
    const n = gs.reduce((k, g) => k + g.attributes.position.count, 0);
    const arrays = { position: new Float32Array(n * 3), normal: new Float32Array(n * 3), uv: new Float32Array(n * 2),
      color: new Float32Array(n * 3) };
    for (const [name, size] of Object.entries(this.extra)) arrays[name] = new Float32Array(n * size);
    let o = 0;
    gs.forEach((g, i) => {
      const c = g.attributes.position.count, part = this.parts[i];
      arrays.position.set(g.attributes.position.array, o * 3);
      arrays.normal.set(g.attributes.normal.array, o * 3);
      if (g.attributes.uv) arrays.uv.set(g.attributes.uv.array, o * 2);
      for (let k = 0; k < c; k++) arrays.color.set([part.color.r, part.color.g, part.color.b], (o + k) * 3);
      for (const [name, size] of Object.entries(this.extra)) {
        const v = part.values[name] || new Array(size).fill(0);
        for (let k = 0; k < c; k++) arrays[name].set(v, (o + k) * size);
      }
      o += c;
      g.dispose();
    });
    const out = new THREE.BufferGeometry();
    out.setAttribute("position", new THREE.BufferAttribute(arrays.position, 3));
    out.setAttribute("normal", new THREE.BufferAttribute(arrays.normal, 3));
    out.setAttribute("uv", new THREE.BufferAttribute(arrays.uv, 2));
    out.setAttribute("color", new THREE.BufferAttribute(arrays.color, 3));
    for (const [name, size] of Object.entries(this.extra)) {
      out.setAttribute(name, new THREE.BufferAttribute(arrays[name], size));
    }
    out.computeBoundingSphere();
    return out;
  }

  mesh(material, { cast = true, receive = true } = {}) {
    const m = new THREE.Mesh(this.build(), material);
    m.castShadow = cast;
    m.receiveShadow = receive;
    return m;
  }
}

// ---- cars ----

// A car built from primitives, facing +z.  The root's origin is the front bumper's centre on the ground (so the
// kinematics' bumper distance maps directly onto it); `body` pivots about the centre of mass for the pitch.
export function makeCar({ length = 4.6, width = 1.85, color = 0xd9dadc, sensor = false, driver = false,
  lightBar = false, seats = true } = {}) {
  const L = length, r = LAYOUT.wheelRadius;
  const root = new THREE.Group();
  root.name = "car";
  const body = new THREE.Group();
  const cg = new THREE.Vector3(0, 0.55, -L / 2);
  body.position.copy(cg);
  root.add(body);
  const at = (mesh, x, y, z) => {
    mesh.position.set(x - cg.x, y - cg.y, z - cg.z);
    mesh.castShadow = true;
    body.add(mesh);
    return mesh;
  };
  const part = (geo, mat, x, y, z) => at(new THREE.Mesh(geo, mat), x, y, z);
  const paint = new THREE.MeshStandardMaterial({ color, roughness: 0.35, metalness: 0.35 });
  const dark = new THREE.MeshStandardMaterial({ color: 0x1d1f22, roughness: 0.8 });
  const glass = new THREE.MeshStandardMaterial({ color: 0x22323f, roughness: 0.08, metalness: 0.2,
    transparent: true, opacity: 0.5, side: THREE.DoubleSide, depthWrite: false });

  at(new THREE.Mesh(new THREE.BoxGeometry(width, 0.6, L - 0.1), paint), 0, 0.62, -L / 2);
  at(new THREE.Mesh(new THREE.BoxGeometry(width + 0.02, 0.2, 0.12), dark), 0, 0.45, -0.06);   // front bumper
  at(new THREE.Mesh(new THREE.BoxGeometry(width + 0.02, 0.2, 0.12), dark), 0, 0.45, -L + 0.06);  // rear bumper
  at(new THREE.Mesh(new THREE.BoxGeometry(width * 0.5, 0.16, 0.03), dark), 0, 0.68, -0.04);  // grille

  // cabin: a trapezoid side profile (slanted windscreen and rear window) extruded across the car
  const front = -0.30 * L, rear = -0.86 * L, topFront = -0.44 * L, topRear = -0.76 * L, base = 0.92, top = 1.5;
  const shape = new THREE.Shape();
  shape.moveTo(front, base); shape.lineTo(topFront, top); shape.lineTo(topRear, top); shape.lineTo(rear, base);
  shape.lineTo(front, base);
  const cabinW = width - 0.16;
  const cabinGeo = new THREE.ExtrudeGeometry(shape, { depth: cabinW, bevelEnabled: false });
  cabinGeo.rotateY(-Math.PI / 2);   // shape x -> car z, extrusion -> car x
  cabinGeo.translate(cabinW / 2, 0, 0);
  const cabin = new THREE.Mesh(cabinGeo, glass);
  at(cabin, 0, 0, 0);
  at(new THREE.Mesh(new THREE.BoxGeometry(cabinW + 0.02, 0.05, topFront - topRear + 0.04), paint),
    0, top + 0.02, (topFront + topRear) / 2);   // roof
  for (const sx of [-1, 1]) {  // pillars
    const pillar = new THREE.BoxGeometry(0.06, top - base, 0.08);
    part(pillar, paint, sx * cabinW / 2, (top + base) / 2, (topFront + topRear) / 2);
  }
  const lampMat = new THREE.MeshStandardMaterial({ color: 0xffffff, emissive: 0xfff2d0, emissiveIntensity: 0.8 });
  const tailMat = new THREE.MeshStandardMaterial({ color: 0x660000, emissive: 0xff1a1a, emissiveIntensity: 0.5 });
  for (const sx of [-1, 1]) {
    at(new THREE.Mesh(new THREE.BoxGeometry(0.32, 0.12, 0.04), lampMat), sx * (width / 2 - 0.28), 0.78, -0.03);
    at(new THREE.Mesh(new THREE.BoxGeometry(0.3, 0.12, 0.04), tailMat), sx * (width / 2 - 0.25), 0.8, -L + 0.03);
  }
  if (seats) {
    const seatMat = new THREE.MeshStandardMaterial({ color: 0x2b2b2b, roughness: 0.9 });
    for (const sx of [-1, 1]) part(new THREE.BoxGeometry(0.5, 0.6, 0.12), seatMat, sx * 0.42, 1.15, -0.57 * L);
  }
  let driverGroup = null;
  if (driver) {  // driver's seat on the left (+x when facing +z), hands on the wheel
    driverGroup = new THREE.Group();
    const skin = new THREE.MeshStandardMaterial({ color: 0xc68c6b, roughness: 0.7 });
    const shirt = new THREE.MeshStandardMaterial({ color: 0x3a5f8f, roughness: 0.8 });
    const torso = new THREE.Mesh(new THREE.BoxGeometry(0.42, 0.5, 0.24), shirt);
    torso.position.set(0, 1.0, 0);
    const head = new THREE.Mesh(new THREE.SphereGeometry(0.12, 16, 12), skin);
    head.position.set(0, 1.34, 0.02);
    const wheel = new THREE.Mesh(new THREE.TorusGeometry(0.18, 0.025, 8, 20), dark);
    wheel.position.set(0, 1.05, 0.45);
    wheel.rotation.x = -0.4;
    driverGroup.add(torso, head, wheel);
    driverGroup.position.set(0.42 - cg.x, -cg.y, -0.53 * L - cg.z);
    body.add(driverGroup);
  }
  if (sensor) {  // roof sensor pod of a driverless vehicle: lidar puck and camera housings
    const pod = new THREE.MeshStandardMaterial({ color: 0x2a2d31, roughness: 0.4, metalness: 0.4 });
    at(new THREE.Mesh(new THREE.BoxGeometry(0.9, 0.08, 0.7), pod), 0, top + 0.09, (topFront + topRear) / 2);
    at(new THREE.Mesh(new THREE.CylinderGeometry(0.13, 0.13, 0.16, 20), pod), 0, top + 0.21, (topFront + topRear) / 2);
    const camBox = new THREE.BoxGeometry(0.12, 0.12, 0.18);   // side camera housings
    for (const sx of [-1, 1]) part(camBox, pod, sx * (width / 2 + 0.02), 1.05, -0.33 * L);
  }
  let lightMat = null;
  if (lightBar) {  // an emissive strip along the top of the windscreen, visible to a pedestrian ahead
    lightMat = new THREE.MeshStandardMaterial({ color: 0x0b3b44, emissive: 0x29e3ff, emissiveIntensity: 0.6 });
    const bar = new THREE.Mesh(new THREE.BoxGeometry(cabinW - 0.1, 0.07, 0.1), lightMat);
    at(bar, 0, top + 0.06, topFront + 0.02);
    bar.name = "light_bar";
  }
  const wheels = [];
  const tire = new THREE.MeshStandardMaterial({ color: 0x151515, roughness: 0.95 });
  const hub = new THREE.MeshStandardMaterial({ color: 0x9ea3a8, roughness: 0.3, metalness: 0.7 });
  for (const zAxle of [-0.85, -(L - 0.9)]) {
    for (const sx of [-1, 1]) {
      const spin = new THREE.Group();
      spin.position.set(sx * (width / 2 - 0.12), r, zAxle);
      const t = new THREE.Mesh(new THREE.CylinderGeometry(r, r, 0.24, 20), tire);
      t.rotation.z = Math.PI / 2;
      t.castShadow = true;
      const h = new THREE.Mesh(new THREE.BoxGeometry(0.25, 0.36, 0.08), hub);  // spokes make the rolling visible
      h.position.x = sx * 0.01;
      spin.add(t, h);
      root.add(spin);
      wheels.push(spin);
    }
  }
  return { root, body, wheels, lightMat, driver: driverGroup, length: L };
}

// A parked car: simple boxes and wheels added to the shared batches (paint, glass, tyres).
function addParkedCar(b, x, z, heading, length, color) {
  const L = length, r = LAYOUT.wheelRadius, base = M(x, 0, z, heading);
  const put = (batch, geo, lx, ly, lz, c) => batch.add(geo, base.clone().multiply(M(lx, ly, lz)), c);
  put(b.paint, new THREE.BoxGeometry(1.8, 0.62, L), 0, 0.64, -L / 2, color);
  put(b.paint, new THREE.BoxGeometry(1.58, 0.06, 0.42 * L), 0, 1.52, -0.56 * L, color);
  put(b.glass, new THREE.BoxGeometry(1.6, 0.56, 0.46 * L), 0, 1.22, -0.56 * L, 0x1a2530);
  put(b.paint, new THREE.BoxGeometry(0.3, 0.11, 0.04), 0.62, 0.78, -0.01, 0xf4f1e6);
  put(b.paint, new THREE.BoxGeometry(0.3, 0.11, 0.04), -0.62, 0.78, -0.01, 0xf4f1e6);
  put(b.paint, new THREE.BoxGeometry(0.3, 0.11, 0.04), 0.62, 0.8, -L + 0.01, 0xb01515);
  put(b.paint, new THREE.BoxGeometry(0.3, 0.11, 0.04), -0.62, 0.8, -L + 0.01, 0xb01515);
  const wheel = new THREE.CylinderGeometry(r, r, 0.24, 14).rotateZ(Math.PI / 2);
  for (const wz of [-0.85, -(L - 0.85)]) for (const wx of [-0.8, 0.8]) put(b.tyres, wheel, wx, r, wz, 0x161616);
}

// ---- trees: every limb sways about its attachment point in the vertex shader ----
//
// Per vertex: swayPivot (the limb's attachment point, world coordinates) and sway = (axis azimuth, amplitude in
// rad, angular frequency in rad/s, phase).  The angle is gust(t) * amplitude * sin(frequency * t + phase) with
// a slow gust(t) = 0.6 + 0.4 sin(0.23 t + phase / 2), a rotation about a horizontal axis through the pivot;
// trunks have amplitude 0.  The shadow-map (depth) material gets the same code, so the shadows sway too.

const SWAY_GLSL = `
attribute vec3 swayPivot;
attribute vec4 sway;
uniform float uTime;
vec3 swayRotate(vec3 v, vec3 axis, float ang) {
  float c = cos(ang), s = sin(ang);
  return v * c + cross(axis, v) * s + axis * dot(axis, v) * (1.0 - c);
}
float swayAngle() {
  float gust = 0.6 + 0.4 * sin(0.23 * uTime + sway.w * 0.5);
  return gust * sway.y * sin(sway.z * uTime + sway.w);
}
vec3 swayAxis() { return vec3(cos(sway.x), 0.0, sin(sway.x)); }
`;

function swayMaterial(material, uniforms) {
  material.onBeforeCompile = (shader) => {
    shader.uniforms.uTime = uniforms.uTime;
    shader.vertexShader = shader.vertexShader
      .replace("#include <common>", "#include <common>\n" + SWAY_GLSL)
      .replace("#include <beginnormal_vertex>",
        "#include <beginnormal_vertex>\nobjectNormal = swayRotate(objectNormal, swayAxis(), swayAngle());")
      .replace("#include <begin_vertex>",
        "#include <begin_vertex>\n"
        + "transformed = swayPivot + swayRotate(transformed - swayPivot, swayAxis(), swayAngle());");
  };
  material.customProgramCacheKey = () => "nureality-sway";
  return material;
}

function addTree(batch, rnd, x, z) {
  const greens = [0x3f6b2f, 0x4d7d36, 0x355e29, 0x5a8a3c];
  const bark = 0x5a4330;
  const root = new THREE.Group();
  root.position.set(x, LAYOUT.curb, z);
  root.rotation.y = rnd() * 2 * Math.PI;
  const trunkH = 2.6 + rnd() * 0.8;
  const trunk = new THREE.Mesh(new THREE.CylinderGeometry(0.13, 0.2, trunkH, 8));
  trunk.position.y = trunkH / 2;
  root.add(trunk);
  const limbs = [];
  const n = 5 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) {
    const yaw = new THREE.Group();
    yaw.rotation.y = (i / n) * 2 * Math.PI + rnd() * 0.5;
    yaw.position.y = trunkH * (0.7 + rnd() * 0.3);
    const pivot = new THREE.Group();
    pivot.rotation.z = -(0.5 + rnd() * 0.5);
    const len = 1.3 + rnd() * 0.9;
    const limb = new THREE.Mesh(new THREE.CylinderGeometry(0.05, 0.09, len, 6));
    limb.position.y = len / 2;
    const leaves = new THREE.Mesh(new THREE.IcosahedronGeometry(0.8 + rnd() * 0.5, 1));
    leaves.position.y = len + 0.2;
    pivot.add(limb, leaves);
    yaw.add(pivot);
    root.add(yaw);
    limbs.push({ yaw, limb, leaves, green: greens[Math.floor(rnd() * greens.length)],
      sway: [rnd() * Math.PI, 0.04 + rnd() * 0.05, 0.9 + rnd() * 0.8, rnd() * 2 * Math.PI] });
  }
  const crown = new THREE.Mesh(new THREE.IcosahedronGeometry(1.2 + rnd() * 0.4, 1));
  crown.position.y = trunkH + 1.0;
  root.add(crown);
  root.updateMatrixWorld(true);
  const still = { swayPivot: [0, 0, 0], sway: [0, 0, 0, 0] };
  batch.add(trunk.geometry, trunk.matrixWorld, bark, still);
  for (const l of limbs) {
    const p = new THREE.Vector3().setFromMatrixPosition(l.yaw.matrixWorld);
    const values = { swayPivot: [p.x, p.y, p.z], sway: l.sway };
    batch.add(l.limb.geometry, l.limb.matrixWorld, bark, values);
    batch.add(l.leaves.geometry, l.leaves.matrixWorld, l.green, values);
  }
  batch.add(crown.geometry, crown.matrixWorld, greens[0], { swayPivot: [x, LAYOUT.curb + trunkH, z],
    sway: [rnd() * Math.PI, 0.025, 0.7 + rnd() * 0.3, rnd() * 2 * Math.PI] });
  return { x, z, pivots: limbs.length + 1 };
}

// ---- the world ----

export function createWorld(renderer, { shadows = true } = {}) {
  const rnd = mulberry32(20220112);
  const tex = makeTextures(11);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xbcd3e6);
  scene.fog = new THREE.Fog(0xc9d6df, 80, 320);

  const skyDome = new THREE.Mesh(new THREE.SphereGeometry(450, 24, 16),
    new THREE.MeshBasicMaterial({ map: tex.sky, side: THREE.BackSide, fog: false, depthWrite: false }));
  scene.add(skyDome);
  scene.add(new THREE.HemisphereLight(0xdfeeff, 0x5b5346, 1.4));
  const sun = new THREE.DirectionalLight(0xfff3df, 2.4);
  sun.position.set(-40, 70, 25);
  sun.target.position.set(0, 0, -20);
  if (shadows) {
    sun.castShadow = true;
    sun.shadow.mapSize.set(1024, 1024);
    Object.assign(sun.shadow.camera, { left: -45, right: 45, top: 45, bottom: -45, near: 10, far: 200 });
    renderer.shadowMap.enabled = true;
    renderer.shadowMap.type = THREE.PCFShadowMap;
  }
  scene.add(sun, sun.target);

  const { roadHalf, crossRoadNear, crossRoadFar, sidewalk, curb, crosswalkWidth } = LAYOUT;
  const far = 260;
  const std = (opts) => new THREE.MeshStandardMaterial({ roughness: 0.9, ...opts });
  const decal = { polygonOffset: true, polygonOffsetFactor: -2, polygonOffsetUnits: -2 };

  const ground = new THREE.Mesh(flatRect(2 * far, 2 * far), std({ color: 0x8b8a84 }));
  ground.position.y = -0.02;
  const roads = new Batch()
    .add(flatRect(2 * roadHalf, 2 * far, 8, 8))
    .add(flatRect(2 * far, crossRoadFar - crossRoadNear, 8, 8), M(0, 0.001, (crossRoadNear + crossRoadFar) / 2));
  scene.add(ground, roads.mesh(std({ map: tex.asphalt, roughness: 0.95 }), { cast: false }));

  // blocks: raised sidewalk slabs (1.5 m concrete slabs, texture tile 3 m) in the four quadrants
  const slabs = new Batch();
  const blocks = [];
  for (const sx of [-1, 1]) {
    for (const [z0, z1] of [[-far, crossRoadNear], [crossRoadFar, far]]) {
      const x0 = sx * roadHalf, x1 = sx * (roadHalf + 70), w = Math.abs(x1 - x0), d = z1 - z0;
      const geo = scaleBoxUVs(new THREE.BoxGeometry(w, curb, d), w, curb, d, 3, 3);
      slabs.add(geo, M((x0 + x1) / 2, curb / 2, (z0 + z1) / 2));
      blocks.push({ sx, z0, z1 });
    }
  }
  scene.add(slabs.mesh(std({ map: tex.sidewalk }), { cast: false }));

  // markings: double yellow centre line, dashed parking-lane lines, stop line, zebra crosswalks
  const white = new Batch(), yellow = new Batch();
  const y = 0.012;
  const mark = (batch, w, d, x, z) => batch.add(flatRect(w, d, 1, 1), M(x, y, z));
  for (const [z0, z1] of [[-far, -2.0], [crossRoadFar + crosswalkWidth + 1, far]]) {
    for (const dx of [-0.09, 0.09]) mark(yellow, 0.1, z1 - z0, dx, (z0 + z1) / 2);
    for (const sx of [-1, 1]) for (let z = z0; z < z1 - 3; z += 9) mark(white, 0.12, 3, sx * LAYOUT.laneEdge, z + 1.5);
  }
  mark(white, LAYOUT.laneEdge, 0.45, -LAYOUT.laneEdge / 2, -1.5);   // stop line of the vehicle's lane
  for (const zNear of [0, crossRoadFar + 0.5]) {
    for (let x = -roadHalf + 0.5; x <= roadHalf - 0.5; x += 1.0) {
      mark(white, 0.5, crosswalkWidth, x, zNear + crosswalkWidth / 2);
    }
  }
  for (const sx of [-1, 1]) {  // crosswalks over the cross street, on both sides of the main road
    for (let z = crossRoadNear + 0.6; z <= crossRoadFar - 0.6; z += 1.0) {
      mark(white, crosswalkWidth, 0.5, sx * (roadHalf + 3), z);
    }
  }
  scene.add(white.mesh(std({ map: tex.white, roughness: 0.8, ...decal }), { cast: false }));
  scene.add(yellow.mesh(std({ map: tex.yellow, roughness: 0.8, ...decal }), { cast: false }));

  // buildings set back behind the sidewalks, along both streets of each block; one batch per facade style
  const facadeBatches = tex.facades.map(() => new Batch());
  const cornices = new Batch();
  const tileU = FACADE_TILE.bays * FACADE_TILE.bay, tileV = FACADE_TILE.floors * FACADE_TILE.floor;
  let nBuildings = 0;
  const addBuilding = (x0, x1, z0, z1, h) => {
    const w = Math.abs(x1 - x0), d = Math.abs(z1 - z0), cx = (x0 + x1) / 2, cz = (z0 + z1) / 2;
    const batch = facadeBatches[Math.floor(rnd() * facadeBatches.length)];
    batch.add(scaleBoxUVs(new THREE.BoxGeometry(w, h, d), w, h, d, tileU, tileV), M(cx, curb + h / 2, cz));
    cornices.add(new THREE.BoxGeometry(w + 0.4, 0.45, d + 0.4), M(cx, curb + h + 0.2, cz));
    nBuildings++;
  };
  for (const { sx, z1 } of blocks) {
    const inner = sx * (roadHalf + sidewalk);          // building line along the main road
    const nearCross = z1 <= crossRoadNear ? crossRoadNear - sidewalk : crossRoadFar + sidewalk;
    const dir = z1 <= crossRoadNear ? -1 : 1;          // away from the cross street
    for (let z = nearCross; Math.abs(z - nearCross) < 170;) {
      const len = 10 + rnd() * 10, depth = 14 + rnd() * 8, h = 9 + rnd() * 24;
      addBuilding(inner, inner + sx * depth, z, z + dir * len, h);
      z += dir * (len + 0.3 + rnd() * 1.5);
    }
    for (let x = inner + sx * 22; Math.abs(x) < 90;) {  // along the cross street, behind the corner building
      const len = 10 + rnd() * 10, depth = 14 + rnd() * 8, h = 9 + rnd() * 24;
      addBuilding(x, x + sx * len, nearCross, nearCross + dir * depth, h);
      x += sx * (len + 0.3 + rnd() * 1.5);
    }
  }
  tex.facades.forEach((map, i) => scene.add(facadeBatches[i].mesh(std({ map, roughness: 0.85 }))));
  scene.add(cornices.mesh(std({ color: 0xcfc8ba })));

  // parked cars in the parking lanes, kept clear before each crosswalk so that the approach stays visible
  const parkedColors = [0x8a1c1c, 0x1f3f6e, 0x2e2e30, 0xb8b9bb, 0x58614a, 0x7a6a52, 0x0e4d4a, 0xe0dccf];
  const car = { paint: new Batch(), glass: new Batch(), tyres: new Batch() };
  let nParked = 0;
  const park = (x, z, heading) => {
    addParkedCar(car, x, z, heading, 4.2 + rnd() * 0.7, parkedColors[Math.floor(rnd() * parkedColors.length)]);
    nParked++;
  };
  for (let z = -16; z > -150; z -= 6.2 + rnd() * 3) if (rnd() < 0.8) park(-4.5, z, 0);             // near side
  for (let z = -14; z > -150; z -= 6.2 + rnd() * 3) if (rnd() < 0.8) park(4.5, z, Math.PI);         // far side
  for (let z = crossRoadFar + 14; z < 150; z += 6.2 + rnd() * 3) if (rnd() < 0.7) park(4.5, z, Math.PI);
  for (let x = -roadHalf - 14; x > -90; x -= 6.5 + rnd() * 3) if (rnd() < 0.6) park(x, crossRoadNear + 1, -Math.PI / 2);
  scene.add(car.paint.mesh(std({ vertexColors: true, roughness: 0.35, metalness: 0.35 })));
  scene.add(car.glass.mesh(std({ vertexColors: true, roughness: 0.1, metalness: 0.6 })));
  scene.add(car.tyres.mesh(std({ vertexColors: true, roughness: 0.95 })));

  // street trees along the kerbs (none right beside the pedestrian)
  const treeUniforms = { uTime: { value: 0 } };
  const trees = new Batch({ swayPivot: 3, sway: 4 });
  const treeList = [];
  for (const sx of [-1, 1]) {
    const x = sx * (roadHalf + 1.2);
    for (let z = -14; z > -150; z -= 11 + rnd() * 6) treeList.push(addTree(trees, rnd, x, z));
    for (let z = crossRoadFar + 9; z < 150; z += 11 + rnd() * 6) treeList.push(addTree(trees, rnd, x, z));
  }
  const treeMesh = trees.mesh(swayMaterial(std({ vertexColors: true, flatShading: true }), treeUniforms));
  const treeDepth = new THREE.MeshDepthMaterial({ depthPacking: THREE.RGBADepthPacking });
  treeMesh.customDepthMaterial = swayMaterial(treeDepth, treeUniforms);   // shadows sway with the limbs
  treeMesh.frustumCulled = false;   // the vertices move; the merged bounds cover the whole street anyway
  scene.add(treeMesh);

  const lamps = new Batch();
  const lampSpots = [[-roadHalf - 0.5, -24], [roadHalf + 0.5, -48], [-roadHalf - 0.5, -72],
    [roadHalf + 0.5, crossRoadFar + 6]];
  for (const [x, z] of lampSpots) {
    lamps.add(new THREE.BoxGeometry(0.14, 6.5, 0.14), M(x, 3.25 + curb, z));
    lamps.add(new THREE.BoxGeometry(1.6, 0.1, 0.1), M(x - Math.sign(x) * 0.8, 6.45 + curb, z));
    lamps.add(new THREE.BoxGeometry(0.5, 0.12, 0.25), M(x - Math.sign(x) * 1.5, 6.38 + curb, z), 0xf2efe4);
  }
  scene.add(lamps.mesh(std({ vertexColors: true, color: 0x50555c, roughness: 0.6, metalness: 0.5 })));

  // the participant's viewpoint: a rig on the kerb; the camera sits at eye height inside it (desktop), or is
  // driven by the headset pose relative to the rig (WebXR, floor-level reference space)
  const rig = new THREE.Group();
  rig.position.set(LAYOUT.pedX, curb, LAYOUT.pedZ);
  rig.rotation.y = LAYOUT.defaultYaw;
  const camera = new THREE.PerspectiveCamera(60, 16 / 9, 0.05, 600);
  camera.position.set(0, LAYOUT.eyeHeight, 0);
  camera.rotation.order = "YXZ";
  rig.add(camera);
  scene.add(rig);

  let vehicle = null;

  function setScenario(scenario) {
    if (vehicle) scene.remove(vehicle.car.root);
    const v = scenario.vehicle || {};
    const isAV = v.kind === "av";
    const c = makeCar({ length: v.length_m || 4.6, color: isAV ? 0xe6e7e9 : 0x1e3a66, sensor: isAV,
      driver: !!v.driver_visible, lightBar: !!v.light_bar });
    c.root.visible = false;
    c.root.position.set(LAYOUT.laneX, 0, -scenario.start_distance_m);
    scene.add(c.root);
    const b = scenario.braking;
    const brakeStart = b ? (scenario.start_distance_m - b.onset_distance_m) / scenario.v0_mps : Infinity;
    vehicle = { car: c, scenario, brakeStart };
    return vehicle;
  }

  // Place the vehicle from a kinematic state {x, v, a, pitch} at scenario time t (s since onset).
  function setVehicleState(st, t) {
    if (!vehicle) return;
    const { car: c, scenario, brakeStart } = vehicle;
    c.root.visible = true;
    c.root.position.set(LAYOUT.laneX, 0, -st.x);
    c.body.rotation.x = THREE.MathUtils.degToRad(st.pitch);   // positive = nose down for a car facing +z
    const rolled = (scenario.start_distance_m - st.x) / LAYOUT.wheelRadius;
    for (const w of c.wheels) w.rotation.x = rolled;
    if (c.lightMat) {
      const yielding = scenario.yields && t >= brakeStart;
      c.lightMat.emissiveIntensity = yielding ? 0.35 + 1.4 * Math.abs(Math.sin(Math.PI * 1.5 * (t - brakeStart))) : 0.6;
    }
  }

  function hideVehicle() {
    if (vehicle) vehicle.car.root.visible = false;
  }

  function update(time) {
    treeUniforms.uTime.value = time;
  }

  return { scene, camera, rig, sun, setScenario, setVehicleState, hideVehicle, update, treeUniforms,
    counts: { buildings: nBuildings, parked: nParked, trees: treeList.length },
    get vehicle() { return vehicle; } };
}
