// Charts drawn as SVG: a line/area chart over time and a horizontal bar list. Sizes come
// from the viewBox, so a chart scales with its box; colours come from the stylesheet.
import { fmtNum } from './ui.jsx';

const W = 600;
const H = 180;
const PAD = { l: 44, r: 10, t: 10, b: 22 };

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function tickLabel(t, spanMs) {
  const d = new Date(t);
  if (spanMs > 3 * 86400e3) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  if (spanMs > 12 * 3600e3) return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

// LineChart draws series [{label, cls, values}] against times (ms since epoch).
export function LineChart({ times, series, title, format }) {
  const fmt = format || fmtNum;
  const n = times.length;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (i) => PAD.l + (n <= 1 ? 0 : (i * (W - PAD.l - PAD.r)) / (n - 1));
  const y = (v) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
  const span = n > 1 ? times[n - 1] - times[0] : 0;
  const ticks = n > 1 ? [0, Math.floor((n - 1) / 2), n - 1] : [0];
  return (
    <figure class="chart">
      <figcaption>
        {title}
        {series.length > 1 && series.map((s) => <span class={'legend ' + s.cls} key={s.label}>{s.label}</span>)}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title} preserveAspectRatio="none">
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line class="gridline" x1={PAD.l} x2={W - PAD.r} y1={y(max * f)} y2={y(max * f)} />
            <text class="axis" x={PAD.l - 6} y={y(max * f) + 4} text-anchor="end">{f === 0 ? '0' : fmt(max * f)}</text>
          </g>
        ))}
        {n > 0 && ticks.map((i) => (
          <text key={i} class="axis" x={x(i)} y={H - 6} text-anchor={i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle'}>{tickLabel(times[i], span)}</text>
        ))}
        {series.map((s) => {
          if (n === 0) return null;
          const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
          const area = `M${x(0)},${y(0)} L${pts.join(' L')} L${x(n - 1)},${y(0)} Z`;
          return (
            <g key={s.label} class={'series ' + s.cls}>
              <path class="area" d={area} />
              <polyline class="line" points={pts.join(' ')} />
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

// Bars draws rows [{name, value}] as horizontal bars, largest first.
export function Bars({ rows, title, format }) {
  const fmt = format || fmtNum;
  const max = Math.max(1, ...rows.map((r) => r.value));
  return (
    <figure class="chart bars">
      <figcaption>{title}</figcaption>
      {rows.length === 0 ? <p class="muted empty">No data in this window.</p> : (
        <ul>
          {rows.map((r) => (
            <li key={r.name}>
              <span class="bar-name" title={r.name}>{r.name || '(none)'}</span>
              <svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
                <rect x="0" y="0" height="10" width={Math.max(0.5, (r.value / max) * 100)} />
              </svg>
              <span class="bar-value">{fmt(r.value)}</span>
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}
