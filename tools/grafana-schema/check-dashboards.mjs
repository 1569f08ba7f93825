// Type-check Grafana dashboard JSON files against Grafana's published schema (@grafana/schema).
//
// @grafana/schema ships the dashboard schema as TypeScript types generated from Grafana's CUE
// kinds. For each dashboard this writes a small TypeScript module that assigns the dashboard's
// JSON (as an object literal, so excess-property checks apply) to `Dashboard`, and each panel's
// `options` and `fieldConfig.defaults.custom` to the option types of its panel plugin, then
// compiles them with `tsc --strict --noEmit`. String enums in the types (e.g. ThresholdsMode)
// are compared by their JSON string values.
//
// Usage: node check-dashboards.mjs DIR   (exit 0: every dashboard valid; 1: errors printed)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const PANEL_TYPES = {
  timeseries: "timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen",
  stat: "stat/panelcfg/x/StatPanelCfg_types.gen",
  gauge: "gauge/panelcfg/x/GaugePanelCfg_types.gen",
  bargauge: "bargauge/panelcfg/x/BarGaugePanelCfg_types.gen",
  table: "table/panelcfg/x/TablePanelCfg_types.gen",
  piechart: "piechart/panelcfg/x/PieChartPanelCfg_types.gen",
  text: "text/panelcfg/x/TextPanelCfg_types.gen",
};
const HAS_FIELD_CONFIG = new Set(["timeseries", "table", "piechart", "bargauge"]);

const dir = path.resolve(process.argv[2] ?? path.join(here, "../../grafana/dashboards"));
const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
if (files.length === 0) {
  console.error(`no dashboards in ${dir}`);
  process.exit(1);
}

const outDir = fs.mkdtempSync(path.join(here, ".generated-"));
const problems = [];
const sources = [];

function alias(type) {
  return type.replace(/[^a-z]/g, "_");
}

for (const file of files) {
  let dashboard;
  try {
    dashboard = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
  } catch (error) {
    problems.push(`${file}: not valid JSON: ${error.message}`);
    continue;
  }
  const lines = [
    'import type { Dashboard } from "@grafana/schema";',
    ...Object.entries(PANEL_TYPES).map(
      ([type, mod]) =>
        `import type * as ${alias(type)} from "@grafana/schema/dist/esm/raw/composable/${mod}";`,
    ),
    "type Wire<T> = T extends string ? `${T}`",
    "  : T extends number | boolean | null | undefined ? T",
    "  : T extends ReadonlyArray<infer E> ? Array<Wire<E>>",
    "  : T extends object ? { [K in keyof T]: Wire<T[K]> }",
    "  : T;",
    `export const dashboard: Wire<Dashboard> = ${JSON.stringify(dashboard, null, 2)};`,
  ];
  const panels = [];
  for (const panel of dashboard.panels ?? []) {
    panels.push(panel);
    for (const inner of panel.panels ?? []) panels.push(inner);
  }
  panels.forEach((panel, index) => {
    const where = `panel ${panel.id ?? index} "${panel.title ?? ""}"`;
    if (panel.type === "row") return;
    if (!(panel.type in PANEL_TYPES)) {
      problems.push(`${file}: ${where}: panel type "${panel.type}" is not one this check knows`);
      return;
    }
    const ns = alias(panel.type);
    lines.push(`// ${where}`);
    lines.push(
      `export const options_${index}: Wire<${ns}.Options> = ${JSON.stringify(panel.options ?? {}, null, 2)};`,
    );
    const custom = panel.fieldConfig?.defaults?.custom;
    if (custom !== undefined) {
      if (!HAS_FIELD_CONFIG.has(panel.type)) {
        problems.push(`${file}: ${where}: ${panel.type} panels take no fieldConfig.defaults.custom`);
      } else {
        lines.push(
          `export const custom_${index}: Wire<${ns}.FieldConfig> = ${JSON.stringify(custom, null, 2)};`,
        );
      }
    }
  });
  const target = path.join(outDir, file.replace(/\.json$/, ".ts"));
  fs.writeFileSync(target, lines.join("\n") + "\n");
  sources.push(target);
}

try {
  if (sources.length) {
    const program = ts.createProgram(sources, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      skipLibCheck: true,
      types: [],
    });
    for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
      if (diagnostic.file) {
        const name = path.basename(diagnostic.file.fileName).replace(/\.ts$/, ".json");
        const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
        const context = diagnostic.file.text.split("\n").slice(0, line + 1).reverse()
          .find((l) => l.startsWith("// panel") || l.startsWith("export const dashboard"));
        problems.push(`${name}: ${context ?? ""}: ${message}`);
      } else {
        problems.push(message);
      }
    }
  }
} finally {
  fs.rmSync(outDir, { recursive: true, force: true });
}

if (problems.length) {
  for (const problem of problems) console.error(problem);
  console.error(`${problems.length} problem(s) in ${files.length} dashboard(s)`);
  process.exit(1);
}
console.log(`${files.length} dashboard(s) match @grafana/schema`);
