// The SVG over the image. Its viewBox is the image's own pixel grid, so a box's rect carries the pixel coordinates the
// gateway returned (x, y, width, height) whatever size the image is shown at.

const SVG = 'http://www.w3.org/2000/svg';
// Colours with at least 4.5:1 contrast against the white label text.
const PALETTE = ['#b3261e', '#1a5fb4', '#26734d', '#8f3fa8', '#a35200', '#006b75', '#5c5c00', '#c2185b'];

export class Overlay {
  constructor(svg, image) {
    this.svg = svg;
    this.image = image;
    this.width = 1;
    this.height = 1;
    this.region = null;
    this.onRegion = () => {};
    svg.addEventListener('pointerdown', (e) => this.#startDrawing(e));
  }

  /** Fits the grid to a newly loaded image and removes every box. */
  reset(width, height) {
    this.width = width;
    this.height = height;
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.clearEntities();
    this.setRegion(null);
  }

  clearEntities() {
    this.svg.querySelectorAll('g.entity').forEach((g) => g.remove());
  }

  /** Draws one entity's boxes, labelled with its phrase; returns its group (for highlighting). */
  addEntity(entity, index) {
    const group = this.#element('g', { class: 'entity', 'data-entity': index, 'data-phrase': entity.phrase });
    const colour = PALETTE[index % PALETTE.length];
    const unit = this.#unit();
    for (const box of entity.boxes ?? []) {
      const p = pixels(box.pixels);
      group.append(this.#element('rect', {
        class: 'box', x: p.x1, y: p.y1, width: p.x2 - p.x1, height: p.y2 - p.y1, stroke: colour, 'stroke-width': 3 * unit,
      }));
      const label = this.#element('text', { class: 'label', x: p.x1 + 4 * unit, y: p.y1 + 16 * unit, 'font-size': 14 * unit });
      label.textContent = entity.phrase;
      const background = this.#element('rect', {
        class: 'label-bg', x: p.x1, y: p.y1, width: (entity.phrase.length * 8 + 8) * unit, height: 20 * unit, fill: colour,
      });
      group.append(background, label);
    }
    this.svg.append(group);
    return group;
  }

  highlight(index, on) {
    this.svg.querySelectorAll(`g.entity[data-entity="${index}"]`).forEach((g) => g.classList.toggle('highlight', on));
  }

  /** The user's region in image pixels ({x1, y1, x2, y2}) or null; shown as a dashed rect. */
  setRegion(region) {
    this.region = region;
    this.svg.querySelector('rect.region')?.remove();
    if (region) {
      this.svg.append(this.#element('rect', {
        class: 'region', x: region.x1, y: region.y1, width: region.x2 - region.x1, height: region.y2 - region.y1,
        'stroke-width': 2 * this.#unit(), 'stroke-dasharray': `${6 * this.#unit()}`,
      }));
    }
  }

  #startDrawing(start) {
    if (start.button !== 0) return;
    start.preventDefault();
    this.svg.setPointerCapture(start.pointerId);
    const from = this.#toImage(start);
    const move = (e) => {
      const to = this.#toImage(e);
      const region = {
        x1: Math.min(from.x, to.x), y1: Math.min(from.y, to.y), x2: Math.max(from.x, to.x), y2: Math.max(from.y, to.y),
      };
      this.setRegion(region.x2 > region.x1 && region.y2 > region.y1 ? region : null);
    };
    const end = (e) => {
      move(e);
      this.svg.removeEventListener('pointermove', move);
      this.svg.removeEventListener('pointerup', end);
      this.onRegion(this.region);
    };
    this.svg.addEventListener('pointermove', move);
    this.svg.addEventListener('pointerup', end);
  }

  /** A pointer position in image pixels, clamped to the image, rounded to 0.1 px. */
  #toImage(e) {
    const r = this.svg.getBoundingClientRect();
    const clamp = (v, max) => Math.round(Math.min(Math.max(v, 0), max) * 10) / 10;
    return {
      x: clamp(((e.clientX - r.left) * this.width) / r.width, this.width),
      y: clamp(((e.clientY - r.top) * this.height) / r.height, this.height),
    };
  }

  /** One screen pixel in image pixels, so strokes and labels keep their size whatever the scale. */
  #unit() {
    const shown = this.svg.getBoundingClientRect().width;
    return shown > 0 ? this.width / shown : 1;
  }

  #element(name, attributes) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    return element;
  }
}

/** A proto3 JSON Box: fields at 0 are left out of the JSON. */
export function pixels(box) {
  return { x1: box?.x1 ?? 0, y1: box?.y1 ?? 0, x2: box?.x2 ?? 0, y2: box?.y2 ?? 0 };
}
