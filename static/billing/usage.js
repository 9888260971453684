// The admin usage page's charts, drawn with Chart.js (vendored: static/chat/vendor/chartjs/) from the
// numbers the page embeds as JSON (#usage-data); the page's tables show the same numbers.
// Costs arrive as decimal strings, null when unknown: an unknown cost draws no bar (never a zero one).
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("usage-data").textContent);
  const PALETTE = ["#417690", "#e4a11b", "#5b9e5b", "#b3504b", "#7a5ea8", "#3aa3b3", "#c77c3e", "#8c8c8c"];
  const style = getComputedStyle(document.documentElement);

  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.color = style.getPropertyValue("--body-quiet-color").trim() || "#666";
  Chart.defaults.borderColor = style.getPropertyValue("--hairline-color").trim() || "#e8e8e8";

  const cost = (value) => (value == null ? null : Number(value));
  const dollars = (value) => `$${Number(Number(value).toPrecision(3))}`;
  const color = (i) => PALETTE[i % PALETTE.length];

  /** One dataset per model over every day of the range; `value(row)` is the bar's height. */
  function perModel(value) {
    const day = new Map(data.days.map((d, i) => [d, i]));
    const labels = [...new Set(data.daily.map((row) => row.label))];
    return labels.map((label, i) => {
      const values = data.days.map(() => null);
      for (const row of data.daily) if (row.label === label) values[day.get(row.day)] = value(row);
      return { label, data: values, backgroundColor: color(i) };
    });
  }

  function bars(id, labels, datasets, { horizontal = false, stacked = false, money = false } = {}) {
    const valueAxis = {
      stacked,
      beginAtZero: true,
      ticks: money ? { callback: (v) => dollars(v) } : { precision: 0 },
    };
    const categoryAxis = { stacked };
    if (horizontal) for (const dataset of datasets) dataset.maxBarThickness = 36;
    return new Chart(document.getElementById(id), {
      type: "bar",
      data: { labels, datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
        plugins: {
          legend: { display: datasets.length > 1, position: "bottom" },
          tooltip: {
            callbacks: {
              label: (item) => {
                const v = item.raw;
                const shown = v == null ? "unknown" : money ? `$${v}` : v.toLocaleString();
                return `${item.dataset.label}: ${shown}`;
              },
            },
          },
        },
      },
    });
  }

  bars("chart-cost-daily", data.days, perModel((row) => cost(row.cost)), { stacked: true, money: true });
  bars("chart-tokens-daily", data.days, perModel((row) => row.input_tokens + row.output_tokens), {
    stacked: true,
  });

  const unknownNote = (row) => (row.cost == null ? " (cost unknown)" : "");
  bars(
    "chart-top-users",
    data.top_users.map((row) => row.username + unknownNote(row)),
    [{ label: "Cost", data: data.top_users.map((row) => cost(row.cost)), backgroundColor: color(0) }],
    { horizontal: true, money: true },
  );
  bars(
    "chart-top-keys",
    data.top_keys.map((row) => `${row.key_name} (${row.owner})${unknownNote(row)}`),
    [{ label: "Cost", data: data.top_keys.map((row) => cost(row.cost)), backgroundColor: color(1) }],
    { horizontal: true, money: true },
  );

  const part = (label, field, i) => ({
    label,
    data: data.budgets.map((row) => cost(row[field])),
    backgroundColor: color(i),
  });
  bars(
    "chart-budgets",
    data.budgets.map((row) => `${row.label} ($${row.amount}/${row.period})`),
    [part("Spent", "spent", 3), part("Reserved", "reserved", 1), part("Remaining", "remaining", 2)],
    { horizontal: true, stacked: true, money: true },
  );

  document.body.dataset.chartsReady = "true";
})();
