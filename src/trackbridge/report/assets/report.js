/* trackbridge report: the run filter, and each run's tables and charts drawn when it is
   opened (a 1,000-run page parses and draws nothing it does not show). No network. */
(function () {
  "use strict";
  var STATE_CLASS = ["", "differs", "missing", "extra"];
  var STATE_TEXT = ["equal", "differs", "missing at the destination", "only at the destination"];
  var COLORS = {source: "#1f6feb", destination: "#e8710a", differs: "#d1242f"};

  function h(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function part(body, title) {
    var s = h("section", "part");
    s.appendChild(h("h4", null, title));
    body.appendChild(s);
    return s;
  }

  function fmt(n) { return Number(n).toLocaleString("en-US"); }

  /* rows: [key, source, destination, state]; a cell that differs is marked. */
  function table(parent, head, rows) {
    if (!rows || !rows.length) return;
    var t = h("table", "cmp"), tr = h("tr");
    head.concat(["state"]).forEach(function (c) { tr.appendChild(h("th", null, c)); });
    t.appendChild(h("thead")).appendChild(tr);
    var tb = t.appendChild(h("tbody"));
    rows.forEach(function (r) {
      var st = r[3], row = h("tr", STATE_CLASS[st]);
      row.appendChild(h("td", "key", r[0]));
      [1, 2].forEach(function (i) {
        var bad = st === 1 || (st === 2 && i === 2) || (st === 3 && i === 1);
        var v = r[i], td = h("td", (bad ? "bad " : "") + (v === null || v === undefined ? "none" : "val"),
                             v === null || v === undefined ? "—" : v);
        row.appendChild(td);
      });
      row.appendChild(h("td", "st", STATE_TEXT[st]));
      tb.appendChild(row);
    });
    parent.appendChild(t);
  }

  /* one x (step) axis for both sides: the union of their steps, gaps spanned. */
  function align(sides) {
    var steps = {}, xs = [];
    sides.forEach(function (s) { if (s) s[0].forEach(function (x) { steps[x] = 1; }); });
    Object.keys(steps).forEach(function (k) { xs.push(Number(k)); });
    xs.sort(function (a, b) { return a - b; });
    var at = {};
    xs.forEach(function (x, i) { at[x] = i; });
    var out = [xs];
    sides.forEach(function (s) {
      var ys = new Array(xs.length).fill(null);
      if (s) s[0].forEach(function (x, i) { ys[at[x]] = s[1][i]; });
      out.push(ys);
    });
    return out;
  }

  function chart(parent, s) {
    var box = h("div", "chart" + (s.miss || s.extra ? " differs" : ""));
    var head = h("div", "chart-head");
    head.appendChild(h("strong", null, s.k));
    var counts = "source " + fmt(s.sc) + " points · destination " + fmt(s.dc);
    if (s.miss || s.extra) counts += " · " + fmt(s.miss) + " missing · " + fmt(s.extra) + " extra";
    if (s.nf[0] || s.nf[1]) counts += " · NaN/±inf not drawn: " + fmt(s.nf[0]) + " / " + fmt(s.nf[1]);
    if (!s.d) counts += " · drawn points identical";
    head.appendChild(h("span", "counts", counts));
    box.appendChild(head);
    parent.appendChild(box);
    if (!s.s[0].length && !(s.d && s.d[0].length)) {
      box.appendChild(h("p", "none", "no drawable point"));
      return;
    }
    var marked = s.x[0].length > 0;
    var data = align(marked ? [s.s, s.d || s.s, s.x] : [s.s, s.d || s.s]);
    var width = Math.max(320, Math.min(540, Math.floor(((parent.clientWidth || 1000) - 24) / 2)));
    var opts = {
      width: width, height: 180,
      scales: {x: {time: false}},
      legend: {live: false},
      cursor: {drag: {x: true, y: false}},
      series: [
        {label: "step"},
        {label: "source", stroke: COLORS.source, width: 2, spanGaps: true},
        {label: s.d ? "destination" : "destination (same)", stroke: COLORS.destination, width: 1.5, dash: [6, 4],
         spanGaps: true}
      ],
      axes: [{label: "step", size: 40}, {size: 60}]
    };
    if (marked) {
      opts.series.push({label: "differs (examples)", stroke: COLORS.differs, fill: COLORS.differs, width: 0,
                        paths: function () { return null; }, points: {show: true, size: 9, fill: COLORS.differs}});
    }
    new uPlot(opts, data, box);
  }

  function drawRun(el) {
    var src = document.getElementById("d" + el.dataset.i);
    if (!src) return;
    var d = JSON.parse(src.textContent), body = el.querySelector(".body");
    if (d.details && d.details.length) {
      var p = part(body, "What check found"), ul = h("ul", "details");
      d.details.forEach(function (x) { ul.appendChild(h("li", null, x)); });
      p.appendChild(ul);
    }
    if (d.declared && d.declared.length) {
      var q = part(body, "Declared transformations (what plan records for this run, and why)"),
          t = h("table", "cmp declared");
      d.declared.forEach(function (r) {
        var tr = h("tr");
        tr.appendChild(h("td", "what", r[0])); tr.appendChild(h("td", "key", r[1])); tr.appendChild(h("td", null, r[2]));
        t.appendChild(tr);
      });
      q.appendChild(t);
    }
    if (d.series.length || (d.nodst && d.nodst.length) || (d.onlydst && d.onlydst.length)) {
      var m = part(body, "Metrics: source (solid) and destination (dashed); at most 200 points drawn per side");
      var charts = m.appendChild(h("div", "charts"));
      d.series.forEach(function (s) { chart(charts, s); });
      if (d.nodst && d.nodst.length) m.appendChild(h("p", "bad", "missing at the destination: " + d.nodst.join(", ")));
      if (d.onlydst && d.onlydst.length) m.appendChild(h("p", "bad", "only at the destination: " + d.onlydst.join(", ")));
    }
    [["param", "Params"], ["tag", "Tags"], ["files", "Artifacts"], ["media", "Media series"],
     ["models", "Logged models"]].forEach(function (k) {
      var first = {files: "path", models: "model", media: "series"}[k[0]] || "key";
      if (d[k[0]] && d[k[0]].length) table(part(body, k[1]), [first, "source", "destination"], d[k[0]]);
    });
  }

  var runs = Array.prototype.slice.call(document.querySelectorAll("details.run"));
  var filter = document.getElementById("filter"), only = document.getElementById("only"),
      shown = document.getElementById("shown");

  function apply() {
    var q = filter.value.trim().toLowerCase(), n = 0;
    runs.forEach(function (el) {
      var ok = (!only.checked || el.dataset.state !== "equal") && (!q || el.dataset.text.indexOf(q) >= 0);
      el.hidden = !ok;
      if (ok) n += 1;
    });
    shown.textContent = fmt(n) + " of " + fmt(runs.length) + " shown";
  }

  runs.forEach(function (el) {
    el.addEventListener("toggle", function () {
      if (el.open && !el.dataset.drawn) {
        el.dataset.drawn = "1";
        drawRun(el);
      }
    });
  });
  if (filter) {
    /* a link can carry the filter: report.html#filter=TEXT&only */
    var hash = new URLSearchParams(location.hash.slice(1));
    filter.value = hash.get("filter") || "";
    only.checked = hash.has("only");
    filter.addEventListener("input", apply);
    only.addEventListener("change", apply);
    apply();
  }
  var first = document.querySelector('details.run[data-state="differs"]');
  if (first) {  /* the first differing run is opened, drawn now so the loaded page already shows it */
    first.dataset.drawn = "1";
    drawRun(first);
    first.open = true;
  }
})();
