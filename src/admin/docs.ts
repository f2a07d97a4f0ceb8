/**
 * `/admin/docs`: a self-contained HTML page rendered on the server from the same OpenAPI document
 * as `/admin/openapi.json` (no CDN, no script), one section per tag and one entry per operation.
 */

interface OpenApiLike {
  info: { title: string; version: string; description?: string };
  paths?: Record<string, Record<string, unknown> | undefined>;
}

interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: Array<{
    name: string;
    in: string;
    required?: boolean;
    description?: string;
    schema?: unknown;
  }>;
  requestBody?: { required?: boolean; content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
  'x-keygate-permission'?: string;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

export function renderDocsPage(document: object): string {
  const doc = document as OpenApiLike;
  const byTag = new Map<string, Array<{ method: string; path: string; op: Operation }>>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item?.[method] as Operation | undefined;
      if (!op) continue;
      const tag = op.tags?.[0] ?? 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push({ method, path, op });
    }
  }
  const toc = [...byTag.keys()].map((t) => `<li><a href="#${anchor(t)}">${esc(t)}</a></li>`).join('');
  const sections = [...byTag.entries()]
    .map(
      ([tag, ops]) =>
        `<section id="${anchor(tag)}"><h2>${esc(tag)}</h2>${ops.map((o) => renderOperation(o.method, o.path, o.op)).join('')}</section>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(doc.info.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em;text-transform:capitalize}
details{border:1px solid #ddd;border-radius:6px;margin:.5em 0;padding:.4em .8em}
summary{cursor:pointer} code,pre{font:13px/1.4 ui-monospace,monospace}
pre{background:#f6f8fa;padding:.6em;border-radius:4px;overflow:auto;max-height:28em}
.m{display:inline-block;min-width:4.2em;font-weight:600;text-transform:uppercase}
.get{color:#1a7f37}.post{color:#0969da}.put{color:#9a6700}.delete{color:#cf222e}.patch{color:#8250df}
.perm{color:#666;font-size:.9em} table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left}
</style></head><body>
<h1>${esc(doc.info.title)}</h1><p>Version ${esc(doc.info.version)} · <a href="/admin/openapi.json">openapi.json</a> (OpenAPI 3.1)</p>
<p>${esc(doc.info.description ?? '')}</p>
<ul>${toc}</ul>${sections}
</body></html>`;
}

function renderOperation(method: string, path: string, op: Operation): string {
  const params = op.parameters?.length
    ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>description</th></tr>${op.parameters
        .map(
          (p) =>
            `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : 'no'}</td><td>${esc(p.description ?? '')}</td></tr>`,
        )
        .join('')}</table>`
    : '';
  const body = op.requestBody?.content
    ? Object.entries(op.requestBody.content)
        .map(
          ([type, c]) =>
            `<h4>Request body (${esc(type)})</h4><pre>${esc(JSON.stringify(c.schema, null, 2))}</pre>`,
        )
        .join('')
    : '';
  const responses = Object.entries(op.responses ?? {})
    .map(([status, r]) => {
      const schema = r.content ? Object.values(r.content)[0]?.schema : undefined;
      const shown =
        schema && Number(status) < 400 ? `<pre>${esc(JSON.stringify(schema, null, 2))}</pre>` : '';
      return `<li><b>${esc(status)}</b> ${esc(r.description ?? '')}${shown}</li>`;
    })
    .join('');
  const perm = op['x-keygate-permission']
    ? `<span class="perm"> · permission <code>${esc(op['x-keygate-permission'])}</code></span>`
    : '';
  return `<details id="${anchor(op.operationId ?? `${method}-${path}`)}"><summary><span class="m ${method}">${method}</span> <code>${esc(path)}</code> — ${esc(op.summary ?? '')}${perm}</summary>
${op.description ? `<p>${esc(op.description)}</p>` : ''}${params}${body}<h4>Responses</h4><ul>${responses}</ul></details>`;
}

function anchor(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
