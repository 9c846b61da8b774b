/**
 * The deployment artifacts, checked without a container engine or a cluster:
 * - deploy/Containerfile: linted (dockerfile-utils), every file it copies exists, and its steps replayed
 *   on a copied tree — `npm pack`, the locked production install, `hoop-gateway --version`, the parser's
 *   WASM loading — without the tree being written to (a read-only root filesystem is fine);
 * - deploy/kubernetes: rendered with `kubectl kustomize`, every object validated against the Kubernetes
 *   OpenAPI schemas (kubernetes-models' JSON-schema validators) and checked for unknown fields with the
 *   TypeScript types generated from the same schemas; the embedded gateway.yaml against our own schema;
 * - deploy/systemd: `systemd-analyze verify` and an offline exposure score.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile } from '../../src/shared/config/load.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

/** Every file under `dir`, with its modification time (to prove nothing was written). */
function snapshot(dir: string, out = new Map<string, number>()): Map<string, number> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) snapshot(path, out);
    else out.set(path, statSync(path).mtimeMs);
  }
  return out;
}

describe('deploy/Containerfile', () => {
  const text = readFileSync(join(DEPLOY, 'Containerfile'), 'utf8');
  const dockerfile = DockerfileParser.parse(text);

  it('lints clean, is multi-stage, runs as a non-root user', () => {
    expect(lintDockerfile(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
    expect(dockerfile.getFROMs().length).toBeGreaterThanOrEqual(2);
    const last = dockerfile.getFROMs().at(-1)!.getRange().start.line;
    const runtime = dockerfile.getInstructions().filter((i) => i.getRange().start.line > last);
    const user = runtime.find((i) => i.getKeyword() === 'USER')?.getArgumentsContent();
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/); // numeric, not root: Kubernetes' runAsNonRoot can check it
    expect(runtime.some((i) => i.getKeyword() === 'ENTRYPOINT')).toBe(true);
  });

  it('copies only files that exist in the build context', () => {
    const sources = dockerfile
      .getCOPYs()
      .filter((copy) => !copy.getFromFlag())
      .flatMap((copy) =>
        copy
          .getArguments()
          .slice(0, -1)
          .map((a) => a.getValue()),
      );
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) expect(existsSync(join(ROOT, source)), source).toBe(true);
  });

  it('replayed on a copied tree: npm pack, the locked production install, --version, the WASM parser', () => {
    const work = mkdtempSync(join(tmpdir(), 'hoop-image-'));
    // build stage: `npm pack` of the built package (npm test builds first; rebuilding here would rewrite
    // dist/ under the tests running beside this one).
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
        cwd: ROOT,
        encoding: 'utf8',
      }),
    ) as { filename: string; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path);
    for (const f of [
      'bin/hoop-gateway',
      'bin/hoopctl',
      'dist/gateway/main.js',
      'package.json',
      'README.md',
    ]) {
      expect(files).toContain(f);
    }
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('gateway/') || f.endsWith('.ts'))).toBe(
      false,
    );

    // install stage: unpack, the lockfile, production dependencies only.
    const opt = join(work, 'opt', 'hoop');
    mkdirSync(opt, { recursive: true });
    execFileSync('tar', ['-xzf', join(work, packed!.filename), '--strip-components=1', '-C', opt]);
    cpSync(join(ROOT, 'package-lock.json'), join(opt, 'package-lock.json'));
    execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: opt,
      stdio: 'pipe',
    });
    expect(existsSync(join(opt, 'node_modules', 'typescript'))).toBe(false);

    // runtime stage: started from elsewhere, as the image's user would, writing nothing to the tree.
    const before = snapshot(opt);
    const run = (args: string[]) =>
      execFileSync(process.execPath, args, { cwd: work, encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(run([join(opt, 'bin', 'hoop-gateway'), '--version']).trim()).toBe(PKG.version);
    const classified = run([
      '--input-type=module',
      '-e',
      `const { loadSqlParser } = await import(${JSON.stringify(join(opt, 'dist/gateway/sql/parser.js'))});
       const { classify } = await import(${JSON.stringify(join(opt, 'dist/gateway/sql/classify.js'))});
       await loadSqlParser();
       const c = classify('delete from orders where id = 1');
       process.stdout.write(c.ok ? c.statements[0].class : 'not understood');`,
    ]);
    expect(classified).toBe('write');
    expect(snapshot(opt)).toEqual(before);
  }, 420_000);
});

// --- Kubernetes --------------------------------------------------------------------------------------

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

function render(dir: string): K8sObject[] {
  const kubectl = spawnSync('kubectl', ['kustomize', join(DEPLOY, 'kubernetes', dir)], { encoding: 'utf8' });
  if (kubectl.error) throw new Error(`kubectl is needed to render the manifests: ${kubectl.error.message}`);
  if (kubectl.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${kubectl.stderr}`);
  return parseAllDocuments(kubectl.stdout).map((d) => d.toJSON() as K8sObject);
}

/** The module of kubernetes-models (or its Prometheus Operator models) that describes this object. */
function modelPath(o: K8sObject): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  if (group === 'monitoring.coreos.com')
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`;
  return `kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`;
}

/** JSON-schema validation (ajv, compiled from the Kubernetes OpenAPI spec): types, required fields, formats. */
async function schemaErrors(o: K8sObject): Promise<string | undefined> {
  const module = (await import(modelPath(o))) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = module[o.kind];
  if (!Model) return `no schema for ${o.apiVersion} ${o.kind}`;
  try {
    new Model(o).validate();
    return undefined;
  } catch (err) {
    return `${o.kind}/${o.metadata.name}: ${(err as Error).message}`;
  }
}

/**
 * Unknown fields (a typo such as `readinessprobe` passes a JSON schema without additionalProperties: false):
 * each object as a literal of its TypeScript interface, generated from the same OpenAPI spec, so the
 * compiler's excess-property check finds any field the API does not have, at any depth.
 */
function unknownFields(objects: K8sObject[]): Map<number, string[]> {
  const dir = join(ROOT, '.cache', 'deploy-check');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'manifests.ts');
  // One object per line, so each diagnostic says which object it is about.
  const lines = objects.map(
    (o) => `export const _: import('${modelPath(o)}').I${o.kind} = ${JSON.stringify(o)};`,
  );
  writeFileSync(file, `${lines.map((l, i) => l.replace('const _', `const o${i}`)).join('\n')}\n`);
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: [],
  });
  const byObject = new Map<number, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n').at(-1)!;
    byObject.set(line, [...(byObject.get(line) ?? []), message]);
  }
  return byObject;
}

describe('deploy/kubernetes', () => {
  const base = render('base');
  const example = render('overlays/example');
  const find = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
  const podOf = (objects: K8sObject[]) =>
    (find(objects, 'Deployment')[0] as unknown as IDeployment).spec!.template.spec!;

  it('renders with kubectl kustomize: every object valid against the Kubernetes schemas, no unknown field', async () => {
    const all = [...base, ...example];
    const errors = (await Promise.all(all.map(schemaErrors))).filter(Boolean);
    expect(errors).toEqual([]);
    // The checks have teeth: a misspelt field and a wrong type, in a copy checked alongside.
    const broken = structuredClone(find(base, 'Deployment')[0]!);
    const container = podOf([broken]).containers[0] as unknown as Record<string, unknown> & {
      ports: { containerPort: unknown }[];
    };
    container.readinessprobe = container.readinessProbe;
    const unknown = unknownFields([...all, broken]);
    expect(unknown.get(all.length)?.join()).toMatch(/readinessprobe/);
    unknown.delete(all.length);
    expect(Object.fromEntries(unknown)).toEqual({});
    container.ports[0]!.containerPort = '8443';
    expect(await schemaErrors(broken)).toMatch(/containerPort must be integer/);
  }, 90_000);

  it('three replicas with probes, a disruption budget, anti-affinity, a locked-down pod', () => {
    const [deployment] = find(base, 'Deployment') as unknown as IDeployment[];
    expect(deployment!.spec!.replicas).toBe(3);
    const pod = podOf(base);
    const container = pod.containers[0]!;
    expect(container.readinessProbe!.httpGet).toMatchObject({ path: '/readyz', port: 'diagnostics' });
    expect(container.livenessProbe!.httpGet).toMatchObject({ path: '/healthz', port: 'diagnostics' });
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.securityContext!.runAsNonRoot).toBe(true);
    expect(pod.affinity!.podAntiAffinity).toBeDefined();
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(35);
    expect(find(base, 'PodDisruptionBudget')[0]!.spec).toMatchObject({ minAvailable: 2 });
    expect(find(base, 'NetworkPolicy')).toHaveLength(1);
    expect(find(base, 'Service').length).toBeGreaterThanOrEqual(1);
    expect(find(example, 'HorizontalPodAutoscaler')).toHaveLength(1);
    expect(find(example, 'PodMonitor')).toHaveLength(1);
    expect(new Set(example.map((o) => o.metadata.namespace ?? 'hoop'))).toEqual(new Set(['hoop']));
  });

  it('no selector is empty (an empty one selects every pod of the namespace)', () => {
    const selectors = [...base, ...example].flatMap((o) => {
      const spec = (o.spec ?? {}) as Record<string, { matchLabels?: object } | undefined>;
      return [spec.selector, spec.podSelector].filter((s) => s !== undefined).map((s) => ({ o, s }));
    });
    for (const { o, s } of selectors) {
      const labels = s!.matchLabels ?? s!;
      expect(Object.keys(labels).length, `${o.kind}/${o.metadata.name}`).toBeGreaterThan(0);
    }
  });

  it('the gateway.yaml it ships is valid for this gateway; secrets are only referenced, never embedded', () => {
    const [config] = find(base, 'ConfigMap').filter((c) => c.data?.['gateway.yaml']);
    const dir = mkdtempSync(join(tmpdir(), 'hoop-k8s-'));
    writeFileSync(join(dir, 'gateway.yaml'), config!.data!['gateway.yaml']!);
    const parsed = loadConfigFile(join(dir, 'gateway.yaml'));
    expect(parsed.diagnostics?.listen).toBe('0.0.0.0:9090');
    expect(parsed.store).toHaveProperty('url');
    expect(find(base, 'Secret')).toEqual([]);
    // What the operator creates before applying: each one documented in docs/deploy.md.
    const pod = podOf(base);
    const secrets = new Set<string>([
      ...(pod.volumes ?? []).flatMap((v) => (v.secret?.secretName ? [v.secret.secretName] : [])),
      ...(pod.containers[0]!.env ?? []).flatMap((e) =>
        e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.name!] : [],
      ),
    ]);
    expect(secrets.size).toBeGreaterThanOrEqual(4);
    const guide = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
    for (const name of [...secrets, 'hoop-gateway-ca'])
      expect(guide, `docs/deploy.md creates ${name}`).toContain(name);
  });
});

// --- systemd -----------------------------------------------------------------------------------------

describe('deploy/systemd', () => {
  const unit = readFileSync(join(DEPLOY, 'systemd', 'hoop-gateway.service'), 'utf8');
  // systemd-analyze checks that the commands exist: point them at this checkout's executable.
  const dir = mkdtempSync(join(tmpdir(), 'hoop-unit-'));
  const file = join(dir, 'hoop-gateway.service');
  writeFileSync(file, unit.replaceAll('/usr/bin/hoop-gateway', join(ROOT, 'bin', 'hoop-gateway')));

  it('passes systemd-analyze verify', () => {
    const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    if (verify.error) throw new Error(`systemd-analyze is needed: ${verify.error.message}`);
    // Other units on the machine may have warnings of their own; none may be about this one.
    const ours = `${verify.stdout}${verify.stderr}`.split('\n').filter((l) => l.includes('hoop-gateway'));
    expect(ours).toEqual([]);
    expect(verify.status).toBe(0);
  });

  it('is sandboxed: the sandboxing keys are set and the offline exposure score is low', () => {
    for (const key of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'StateDirectory=hoop',
      'DynamicUser=yes',
    ]) {
      expect(unit).toContain(key);
    }
    expect(unit).toMatch(/^CapabilityBoundingSet=$/m);
    const security = spawnSync('systemd-analyze', ['security', '--offline=yes', file], { encoding: 'utf8' });
    const score = /Overall exposure level for hoop-gateway\.service: ([\d.]+)/.exec(security.stdout);
    expect(score, security.stdout + security.stderr).not.toBeNull();
    expect(Number(score![1])).toBeLessThanOrEqual(2);
  });
});
