/** The stats view's chart: clicks per link as bars, drawn by uPlot. Loaded on demand, in a chunk of its own. */
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Link } from "../state.ts";

const MAX_BARS = 20;

export default function Chart({ links }: { links: Link[] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const shown = links.slice(0, MAX_BARS);
    const bars = uPlot.paths.bars?.({ size: [0.6, 48] });
    const plot = new uPlot(
      {
        width: Math.min(element.clientWidth || 640, 720),
        height: 220,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: false, range: [-0.5, shown.length - 0.5] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [
          { splits: () => shown.map((_, i) => i), values: (_u, ticks) => ticks.map((t) => shown[t]?.code ?? ""), gap: 6 },
          { size: 48, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000, 1_000_000] },
        ],
        series: [{}, { label: "Clicks", fill: "#4f7cff", stroke: "#3358d4", ...(bars ? { paths: bars } : {}), points: { show: false } }],
      },
      [shown.map((_, i) => i), shown.map((l) => l.clicks)],
      element,
    );
    return () => plot.destroy();
  }, [links]);
  return <div ref={box} className="chart" role="img" aria-label="Clicks per link" />;
}
