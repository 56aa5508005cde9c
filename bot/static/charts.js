/* Small hand-made SVG charts for the owner dashboard: no libraries, no innerHTML.
 *
 * Every chart is a <figure> with a visible title, an <svg role="img" aria-label="...">
 * summary for screen readers, and a <details> data table as the text fallback.
 * All text goes in through textContent, so data can never become markup.
 *
 *   TandemCharts.line(container, {title, summary, points: [{label, value}], min, max, format})
 *   TandemCharts.stacked(container, {title, summary, parts: [{label, value, share, color}]})
 *   TandemCharts.hbars(container, {title, summary, bars: [{label, value}], format})
 *   TandemCharts.columns(container, {title, summary, bars: [{label, value}], format, every})
 *   TandemCharts.sparkline(values, {width, height, label}) -> <svg>
 */
(function () {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#4f46e5", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6"];

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      node.setAttribute(key, String(value));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function htmlEl(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "className") node.className = value;
      else node.setAttribute(key, String(value));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Draw at the container's real width, so 12px text stays 12px on a phone and a wide screen.
  function widthOf(container, fallback) {
    const inner = container.clientWidth - 32;
    return inner > 200 ? Math.round(inner) : fallback;
  }

  function plain(value) {
    return value === null || value === undefined || Number.isNaN(value) ? "—" : String(value);
  }

  function shorten(text, max) {
    const value = String(text);
    return value.length > max ? value.slice(0, max - 1) + "…" : value;
  }

  /* The common frame: title, the svg, an empty-state note and the data table. */
  function frame(container, options, columns, rows) {
    container.replaceChildren();
    const figure = htmlEl("figure", { className: "chart" });
    const caption = htmlEl("figcaption", { className: "chart-title" }, options.title);
    figure.append(caption);
    const svg = svgEl("svg", {
      role: "img",
      "aria-label": options.summary || options.title,
      viewBox: `0 0 ${options.width} ${options.height}`,
      preserveAspectRatio: "xMidYMid meet",
      class: "chart-svg",
    });
    figure.append(svg);
    if (options.empty) {
      figure.append(htmlEl("p", { className: "chart-empty" }, options.emptyText || "No data yet"));
    }
    const details = htmlEl("details", { className: "chart-table" });
    details.append(htmlEl("summary", {}, "Data table"));
    const table = htmlEl("table");
    table.append(htmlEl("caption", { className: "visually-hidden" }, options.title));
    const head = htmlEl("tr");
    for (const column of columns) head.append(htmlEl("th", { scope: "col" }, column));
    const thead = htmlEl("thead");
    thead.append(head);
    table.append(thead);
    const body = htmlEl("tbody");
    for (const row of rows) {
      const tr = htmlEl("tr");
      row.forEach((cell, index) =>
        tr.append(htmlEl(index === 0 ? "th" : "td", index === 0 ? { scope: "row" } : {}, cell)),
      );
      body.append(tr);
    }
    table.append(body);
    details.append(table);
    figure.append(details);
    container.append(figure);
    return svg;
  }

  /* A line over days with a fixed y range (sentiment: -1..1) and a zero line. */
  function line(container, options) {
    const points = options.points || [];
    const format = options.format || ((v) => (v === null ? "—" : v.toFixed(2)));
    const width = widthOf(container, 640);
    const height = 220;
    const pad = { left: 40, right: 12, top: 12, bottom: 28 };
    const min = options.min ?? -1;
    const max = options.max ?? 1;
    const known = points.filter((p) => p.value !== null && p.value !== undefined);
    const svg = frame(
      container,
      { ...options, width, height, empty: known.length === 0 },
      ["Day", options.valueLabel || "Value"].concat(options.extraLabel ? [options.extraLabel] : []),
      points.map((p) =>
        [p.label, format(p.value ?? null)].concat(options.extraLabel ? [plain(p.extra)] : []),
      ),
    );
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const x = (i) => pad.left + (points.length <= 1 ? plotW / 2 : (i * plotW) / (points.length - 1));
    const y = (v) => pad.top + ((max - v) / (max - min)) * plotH;
    const ticks = [max, (max + min) / 2 + (max - min) / 4, (max + min) / 2, min + (max - min) / 4, min];
    for (const tick of ticks) {
      const zero = Math.abs(tick) < 1e-9;
      svg.append(
        svgEl("line", {
          x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick),
          class: zero ? "chart-zero" : "chart-grid",
        }),
      );
      svg.append(
        svgEl("text", { x: pad.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "chart-axis" },
          Number(tick.toFixed(2))),
      );
    }
    // Days without messages break the line instead of pretending a value.
    let path = "";
    let drawing = false;
    points.forEach((p, i) => {
      if (p.value === null || p.value === undefined) {
        drawing = false;
        return;
      }
      const v = Math.max(min, Math.min(max, p.value));
      path += `${drawing ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      drawing = true;
    });
    if (path) svg.append(svgEl("path", { d: path.trim(), class: "chart-line" }));
    points.forEach((p, i) => {
      if (p.value === null || p.value === undefined) return;
      const dot = svgEl("circle", {
        cx: x(i), cy: y(Math.max(min, Math.min(max, p.value))), r: points.length > 45 ? 2 : 3.5,
        class: p.value < 0 ? "chart-dot chart-dot-neg" : "chart-dot",
      });
      dot.append(svgEl("title", {}, `${p.label}: ${format(p.value)}`));
      svg.append(dot);
    });
    const labelled = new Set([0, Math.floor((points.length - 1) / 2), points.length - 1]);
    points.forEach((p, i) => {
      if (!labelled.has(i)) return;
      const anchor = i === 0 && points.length > 1 ? "start" : i === points.length - 1 ? "end" : "middle";
      svg.append(svgEl("text", { x: x(i), y: height - 8, "text-anchor": anchor, class: "chart-axis" }, p.label));
    });
    return svg;
  }

  /* One 100% bar split into parts, with a legend (label, percent, count). */
  function stacked(container, options) {
    const parts = options.parts || [];
    const total = parts.reduce((sum, p) => sum + (p.value || 0), 0);
    const width = widthOf(container, 640);
    const height = 56;
    const svg = frame(
      container,
      { ...options, width, height, empty: total === 0 },
      ["Outcome", "Count", "Share"],
      parts.map((p) => [p.label, plain(p.value), percent(share(p, total))]),
    );
    let offset = 0;
    parts.forEach((p, index) => {
      const fraction = share(p, total);
      if (!fraction) return;
      const w = fraction * width;
      const rect = svgEl("rect", {
        x: offset, y: 8, width: Math.max(w, 0), height: 40,
        fill: p.color || PALETTE[index % PALETTE.length],
      });
      rect.append(svgEl("title", {}, `${p.label}: ${percent(fraction)} (${p.value})`));
      svg.append(rect);
      if (w > 48) {
        svg.append(svgEl("text", { x: offset + w / 2, y: 33, "text-anchor": "middle", class: "chart-on-bar" }, percent(fraction)));
      }
      offset += w;
    });
    if (total === 0) svg.append(svgEl("rect", { x: 0, y: 8, width, height: 40, class: "chart-track" }));
    const legend = htmlEl("ul", { className: "chart-legend" });
    parts.forEach((p, index) => {
      const item = htmlEl("li");
      const swatch = htmlEl("span", { className: "swatch", "aria-hidden": "true" });
      swatch.style.background = p.color || PALETTE[index % PALETTE.length];
      item.append(swatch, htmlEl("span", {}, `${p.label} `), htmlEl("strong", {}, percent(share(p, total))));
      item.append(htmlEl("span", { className: "muted" }, ` (${plain(p.value)})`));
      legend.append(item);
    });
    svg.after(legend);
    return svg;
  }

  function share(part, total) {
    if (typeof part.share === "number") return part.share;
    return total ? (part.value || 0) / total : 0;
  }

  function percent(fraction) {
    if (fraction === null || fraction === undefined || Number.isNaN(fraction)) return "—";
    return `${(fraction * 100).toFixed(fraction > 0 && fraction < 0.1 ? 1 : 0)}%`;
  }

  /* Horizontal bars with the label on the left and the value on the right. */
  function hbars(container, options) {
    const bars = options.bars || [];
    const format = options.format || plain;
    const rowH = 30;
    const width = widthOf(container, 640);
    const labelW = Math.min(220, Math.round(width * 0.38));
    const valueW = 72;
    const height = Math.max(rowH * bars.length + 8, 40);
    const svg = frame(
      container,
      { ...options, width, height, empty: bars.length === 0 },
      [options.labelHeader || "Item", options.valueHeader || "Value"],
      bars.map((b) => [b.label, format(b.value)]),
    );
    const top = Math.max(...bars.map((b) => b.value || 0), 0) || 1;
    bars.forEach((b, i) => {
      const y = 4 + i * rowH;
      const label = svgEl("text", { x: labelW - 8, y: y + rowH / 2 + 4, "text-anchor": "end", class: "chart-label" }, shorten(b.label, Math.max(10, Math.floor(labelW / 7.2))));
      label.append(svgEl("title", {}, b.label));
      svg.append(label);
      svg.append(svgEl("rect", { x: labelW, y: y + 5, width: width - labelW - valueW, height: rowH - 10, class: "chart-track", rx: 3 }));
      const w = ((b.value || 0) / top) * (width - labelW - valueW);
      const bar = svgEl("rect", { x: labelW, y: y + 5, width: Math.max(w, b.value ? 2 : 0), height: rowH - 10, rx: 3, fill: b.color || PALETTE[0] });
      bar.append(svgEl("title", {}, `${b.label}: ${format(b.value)}`));
      svg.append(bar);
      svg.append(svgEl("text", { x: width - valueW + 8, y: y + rowH / 2 + 4, class: "chart-value" }, format(b.value)));
    });
    return svg;
  }

  /* Vertical columns (a histogram): CSAT 1-5, messages per hour 0-23. */
  function columns(container, options) {
    const bars = options.bars || [];
    const format = options.format || plain;
    const width = widthOf(container, 640);
    const height = 200;
    const pad = { left: 36, right: 8, top: 14, bottom: 26 };
    const total = bars.reduce((sum, b) => sum + (b.value || 0), 0);
    const svg = frame(
      container,
      { ...options, width, height, empty: total === 0 },
      [options.labelHeader || "Bucket", options.valueHeader || "Count"],
      bars.map((b) => [b.label, format(b.value)]),
    );
    const top = Math.max(...bars.map((b) => b.value || 0), 0) || 1;
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const slot = plotW / Math.max(bars.length, 1);
    const gap = Math.min(slot * 0.25, 12);
    svg.append(svgEl("line", { x1: pad.left, x2: width - pad.right, y1: pad.top + plotH, y2: pad.top + plotH, class: "chart-baseline" }));
    svg.append(svgEl("text", { x: pad.left - 6, y: pad.top + 4, "text-anchor": "end", class: "chart-axis" }, top));
    svg.append(svgEl("text", { x: pad.left - 6, y: pad.top + plotH, "text-anchor": "end", class: "chart-axis" }, 0));
    // Fewer axis labels when the columns are narrow.
    const every = Math.max(options.every || 1, Math.ceil(22 / Math.max(slot, 1)));
    bars.forEach((b, i) => {
      const h = ((b.value || 0) / top) * plotH;
      const x = pad.left + i * slot + gap / 2;
      const rect = svgEl("rect", { x, y: pad.top + plotH - h, width: slot - gap, height: h, rx: 2, fill: b.color || PALETTE[1] });
      rect.append(svgEl("title", {}, `${b.label}: ${format(b.value)}`));
      svg.append(rect);
      if (bars.length <= 12 && b.value) {
        svg.append(svgEl("text", { x: x + (slot - gap) / 2, y: pad.top + plotH - h - 3, "text-anchor": "middle", class: "chart-value" }, format(b.value)));
      }
      if (i % every === 0) {
        svg.append(svgEl("text", { x: x + (slot - gap) / 2, y: height - 8, "text-anchor": "middle", class: "chart-axis" }, b.label));
      }
    });
    return svg;
  }

  /* A tiny line of sentiment scores (-1..1) for table rows. */
  function sparkline(values, options) {
    const opts = options || {};
    const width = opts.width || 80;
    const height = opts.height || 22;
    const scores = (values || []).filter((v) => typeof v === "number");
    const svg = svgEl("svg", {
      width, height, viewBox: `0 0 ${width} ${height}`, class: "sparkline",
      role: "img", "aria-label": opts.label || `Sentiment over ${scores.length} messages`,
    });
    const y = (v) => 2 + ((1 - Math.max(-1, Math.min(1, v))) / 2) * (height - 4);
    svg.append(svgEl("line", { x1: 0, x2: width, y1: y(0), y2: y(0), class: "chart-zero" }));
    if (scores.length === 0) return svg;
    const step = scores.length === 1 ? 0 : (width - 4) / (scores.length - 1);
    const d = scores.map((v, i) => `${i ? "L" : "M"}${(2 + i * step).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(svgEl("path", { d, class: "spark-line" }));
    const last = scores[scores.length - 1];
    svg.append(svgEl("circle", { cx: 2 + (scores.length - 1) * step, cy: y(last), r: 2.5, class: last < 0 ? "chart-dot chart-dot-neg" : "chart-dot" }));
    return svg;
  }

  window.TandemCharts = { line, stacked, hbars, columns, sparkline, percent, PALETTE };
})();
