// A small SVG line chart of two series over the last points: tokens/s and queue depth.
// Each series has its own scale (the queue is a count, tokens/s a rate); `scale` says their maxima
// (as HTML text beside the chart: SVG text would stretch with the chart's width).

const NS = "http://www.w3.org/2000/svg";
const W = 300;
const H = 90;

function svg(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function path(values, points, max) {
  const step = W / Math.max(points - 1, 1);
  const offset = points - values.length;
  return values
    .map((v, i) => `${i ? "L" : "M"}${((offset + i) * step).toFixed(1)},${(H - 12 - (v / max) * (H - 22)).toFixed(1)}`)
    .join("");
}

export class Chart {
  constructor(points = 120) {
    this.points = points;
    this.tps = [];
    this.queue = [];
    this.node = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
    this.node.setAttribute("aria-label", "tokens per second and queue depth, last two minutes");
    this.scale = document.createElement("span");
  }

  push(tokensPerS, queue) {
    this.tps.push(tokensPerS);
    this.queue.push(queue);
    if (this.tps.length > this.points) this.tps.shift();
    if (this.queue.length > this.points) this.queue.shift();
    this.draw();
  }

  draw() {
    const maxTps = Math.max(1, ...this.tps);
    const maxQueue = Math.max(1, ...this.queue);
    this.node.replaceChildren(
      svg("line", { class: "axis", x1: 0, y1: H - 12, x2: W, y2: H - 12 }),
      svg("path", { class: "tps", d: path(this.tps, this.points, maxTps) }),
      svg("path", { class: "queue", d: path(this.queue, this.points, maxQueue) }),
    );
    this.scale.textContent = `top: ${maxTps.toFixed(0)} tok/s, queue ${maxQueue} · last ${this.tps.length} s`;
  }
}
