/** The bench's cost-curve chart: CPU µs per tick against the offered rate, and each client's ratio to the floor. */
import type { TopLevelSpec } from 'vega-lite';
import { renderSpec } from './chart.ts';

export interface CurveSeriesPoint {
  readonly rate: number;
  readonly series: string;
  readonly usPerTick: number;
  /** usPerTick over the floor's at the same rate (the floor itself: 1). */
  readonly ratio: number;
}

export interface CurveTarget {
  readonly rate: number;
  readonly ratio: number;
}

export function curveChart(title: string, points: readonly CurveSeriesPoint[], targets: readonly CurveTarget[], width = 560): Promise<string> {
  const x = { field: 'rate', type: 'quantitative', title: 'offered rate, ticks/s (log scale)', scale: { type: 'log' }, axis: { values: [...new Set(points.map((p) => p.rate))] } };
  const color = { field: 'series', type: 'nominal', title: null, legend: { orient: 'right' } };
  const usPanel = {
    title: { text: 'CPU per tick (the process’s own utime + stime)', anchor: 'start', fontSize: 12 },
    width,
    height: 220,
    data: { values: points },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: { x, y: { field: 'usPerTick', type: 'quantitative', title: 'µs per tick (log scale)', scale: { type: 'log' } }, color },
  };
  const ratioPanel = {
    title: { text: '× the bare-client floor at the same rate (dashes: targets)', anchor: 'start', fontSize: 12 },
    width,
    height: 160,
    layer: [
      { data: { values: points }, mark: { type: 'line', point: true, strokeWidth: 2 }, encoding: { x, y: { field: 'ratio', type: 'quantitative', title: '× floor', scale: { zero: false } }, color } },
      { data: { values: targets }, mark: { type: 'tick', color: '#c00', thickness: 2, size: 18, strokeDash: [3, 2] }, encoding: { x: { field: 'rate', type: 'quantitative' }, y: { field: 'ratio', type: 'quantitative' } } },
    ],
  };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, fontSize: 14 },
    background: 'white',
    padding: 10,
    vconcat: [usPanel, ratioPanel],
    resolve: { scale: { color: 'shared' } },
  } as unknown as TopLevelSpec;
  return renderSpec(spec);
}
