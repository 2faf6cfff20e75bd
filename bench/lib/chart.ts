/** Charts of the soak and the bench: vega-lite specs rendered to SVG headless with vega-lite → vega (renderer 'none'). */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

export interface ChartPoint {
  /** Seconds since the soak started. */
  readonly t: number;
  readonly series: string;
  readonly value: number;
}

export interface ChartPanel {
  readonly title: string;
  readonly yTitle: string;
  readonly points: readonly ChartPoint[];
}

export interface ChartEvent {
  readonly t: number;
  readonly label: string;
}

function panelSpec(panel: ChartPanel, events: readonly ChartEvent[], width: number): Record<string, unknown> {
  const lines = {
    data: { values: panel.points },
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5 },
    encoding: {
      x: { field: 't', type: 'quantitative', title: 'seconds since start' },
      y: { field: 'value', type: 'quantitative', title: panel.yTitle },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'right' } },
    },
  };
  const rules = {
    data: { values: events },
    mark: { type: 'rule', strokeDash: [4, 3], color: '#888' },
    encoding: { x: { field: 't', type: 'quantitative' } },
  };
  // Alternate label rows so labels of close events do not overlap.
  const labelled = events.map((e, i) => ({ ...e, row: (i % 2) * 11 }));
  const labels = {
    data: { values: labelled },
    mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 2, fontSize: 9, color: '#555' },
    encoding: { x: { field: 't', type: 'quantitative' }, y: { field: 'row', type: 'quantitative', scale: null }, text: { field: 'label' } },
  };
  return {
    title: { text: panel.title, anchor: 'start', fontSize: 12 },
    width,
    height: 110,
    layer: events.length > 0 ? [lines, rules, labels] : [lines],
    resolve: { scale: { color: 'independent' } },
  };
}

/** Renders the panels one above the other, sharing the time axis range; returns the SVG text. */
export async function renderChart(title: string, panels: readonly ChartPanel[], events: readonly ChartEvent[] = [], width = 720): Promise<string> {
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, fontSize: 14 },
    background: 'white',
    padding: 10,
    vconcat: panels.map((p) => panelSpec(p, events, width)),
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
  return renderSpec(spec);
}

/** Compiles a vega-lite spec and renders it to SVG text. */
export async function renderSpec(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
