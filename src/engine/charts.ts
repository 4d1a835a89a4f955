// Vega-Lite → Vega → SVG, headless (no canvas, no DOM): the notebook's charts and the experiment
// view's. The SVG has a transparent background and mid-grey text and rules, readable on light and
// dark themes alike (a notebook shows it as an image, where theme CSS cannot reach); a webview page
// may restyle it by the classes vega writes (role-axis-label, role-axis-grid, …): CSS rules win over
// SVG presentation attributes (docs/notebooks.md#charts).
type Spec = Record<string, unknown>;

/** The colours every chart gets unless its spec sets its own. */
const NEUTRAL = '#7a7a7a';
export const THEME_NEUTRAL_CONFIG = {
  background: null,
  view: { stroke: '#7a7a7a55' },
  axis: { labelColor: NEUTRAL, titleColor: NEUTRAL, domainColor: NEUTRAL, tickColor: NEUTRAL, gridColor: '#7a7a7a40' },
  legend: { labelColor: NEUTRAL, titleColor: NEUTRAL },
  title: { color: NEUTRAL, subtitleColor: NEUTRAL },
  header: { labelColor: NEUTRAL, titleColor: NEUTRAL },
};

type Renderer = { toSvg(spec: Spec): Promise<string> };
let renderer: Promise<Renderer> | undefined;

function load(): Promise<Renderer> {
  renderer ??= (async () => {
    const vg = await import('vega');
    // @ts-expect-error vega-lite's types resolve only under node16 module resolution; compile() is all that is used
    const vl = (await import('vega-lite')) as { compile(spec: unknown): { spec: import('vega').Spec } };
    return {
      async toSvg(spec: Spec) {
        const config = { ...THEME_NEUTRAL_CONFIG, ...((spec.config as Spec | undefined) ?? {}) };
        const compiled = vl.compile({ ...spec, config }).spec;
        const view = new vg.View(vg.parse(compiled), { renderer: 'none' });
        try {
          return await view.toSVG();
        } finally {
          view.finalize();
        }
      },
    };
  })();
  return renderer;
}

/** A Vega-Lite spec (data inline) as an SVG document. */
export async function renderChartSvg(spec: Spec): Promise<string> {
  return (await load()).toSvg(spec);
}
