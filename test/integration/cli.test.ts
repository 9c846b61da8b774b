/**
 * hoopctl as people and CI jobs use it, against the real stack (Postgres, dev IdP, TLS gateway) with the
 * real CLI processes: waits that end under a 0×0 pseudo-terminal and on signals, psql and connect
 * --exec, shell completion driven through bash, profiles, status, token, login --with-token, output
 * machines can read, errors that say what to do, and hoop-gateway --check --connect.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ApprovalListResponse } from '../../src/shared/api.js';
import { completeDeviceLogin } from '../harness/idp.js';
import { runInPty } from '../harness/pty.js';
import { GATEWAY, HOOPCTL, removeTemporary, type Stack, startStack } from '../harness/stack.js';

// Tests here run side by side (each starts several CLI processes): on a busy 2-core machine one can
// take far longer than alone, so each gets three minutes. No assertion is about time.
vi.setConfig({ testTimeout: 180_000 });

let stack: Stack;
let alice: string;
let rita: string;
let aubrey: string;
let issuer: string;

beforeAll(async () => {
  stack = await startStack();
  [alice, rita, aubrey] = await Promise.all([
    stack.login('alice@example.com'),
    stack.login('rita@example.com'),
    stack.login('aubrey@example.com'),
  ]);
  issuer = /issuer: (\S+)/.exec(readFileSync(stack.configFile, 'utf8'))![1]!;
});

const temporaryHomes: string[] = [];
/** A fresh HOOPCTL_HOME, removed when the tests are done. */
function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'hoopctl-home-'));
  temporaryHomes.push(home);
  return home;
}

afterAll(async () => {
  await stack?.stop();
  removeTemporary(...temporaryHomes);
});

/** The environment stack.cli gives a home's user (for processes the test spawns itself). */
function envOf(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    HOOPCTL_HOME: home,
    HOOPCTL_GATEWAY: stack.gatewayUrl,
    HOOPCTL_TOKEN_STORE: 'file',
    HOOPCTL_CA_FILE: stack.certs!.caCert,
    NO_COLOR: '1',
    ...extra,
  };
}

/** `hoopctl login --no-browser ARGS` in an existing home, the browser part done as a person would. */
async function loginInto(home: string, username: string, password: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [HOOPCTL, 'login', '--no-browser', ...args], {
    env: envOf(home, { HOOPCTL_GATEWAY: '' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let browser: Promise<string> | undefined;
  const seen = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    const url = /Open this URL in a browser: (\S+)/.exec(output)?.[1];
    const code = /enter the code:\s+([A-Z]{4}-[A-Z]{4})/.exec(output)?.[1];
    if (url && code && !browser) browser = completeDeviceLogin(url, code, username, password);
  };
  child.stdout.on('data', seen);
  child.stderr.on('data', seen);
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? -1)));
  await browser;
  if (code !== 0) throw new Error(`login exited ${code}: ${output}`);
  return output;
}

async function pendingApprovals(): Promise<ApprovalListResponse['approvals']> {
  const list = await stack.cli(rita, ['approvals', '--all', '--json']);
  return (JSON.parse(list.stdout) as ApprovalListResponse).approvals;
}

describe.concurrent('waits that always end', () => {
  const held = (id: number) => ['exec', 'prod-db', '-c', `delete from orders where id = ${id}`];

  it('under a 0x0 pseudo-terminal: ends on --approval-timeout with exit 5, output bounded', async () => {
    const result = await runInPty([process.execPath, HOOPCTL, ...held(1), '--approval-timeout', '3s'], {
      env: envOf(alice, { NO_COLOR: '' }),
    });
    expect(result.code, result.output).toBe(5);
    expect(result.output).toMatch(/waiting for approval #\d+/);
    expect(result.output).toMatch(/expired without a decision/);
    expect(result.bytes).toBeLessThan(4000);
  });

  it('under a 0x0 pseudo-terminal: SIGTERM ends it with 143 and withdraws the request', async () => {
    const result = await runInPty([process.execPath, HOOPCTL, ...held(2), '--approval-timeout', '10m'], {
      env: envOf(alice),
      signalWhen: 'waiting for approval',
      signal: 'SIGTERM',
    });
    expect(result.code, result.output).toBe(143);
    expect(result.output).toMatch(/interrupted \(SIGTERM\)/);
    expect(result.bytes).toBeLessThan(4000);
    const mine = (await pendingApprovals()).filter((a) => a.statement.includes('id = 2'));
    await expect
      .poll(async () => (await pendingApprovals()).find((a) => a.id === mine[0]?.id)?.status, {
        timeout: 20_000,
      })
      .toBe('withdrawn');
  });

  it('with stdout and stderr pipes: Ctrl-C (SIGINT) ends it with 130, one line per state change', async () => {
    const child = spawn(process.execPath, [HOOPCTL, ...held(3), '--approval-timeout', '10m'], {
      env: envOf(alice),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
      if (/waiting for approval/.test(stderr)) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code, stderr).toBe(130);
    expect(stderr).not.toMatch(/\r|\x1b\[/);
    expect(stderr.split('\n').length).toBeLessThan(10);
  });
});

describe.concurrent('psql and connect --exec', () => {
  it('hoopctl psql prod-db -- -c "select 1" runs psql through the tunnel and passes its exit code', async () => {
    const ok = await stack.cli(alice, ['psql', 'prod-db', '--', '-At', '-c', 'select 1']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe('1');
    const failing = await stack.cli(alice, [
      'psql',
      'prod-db',
      '--',
      '-At',
      '-c',
      'select * from no_such_table',
    ]);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/no_such_table/);
    const denied = await stack.cli(alice, [
      'psql',
      'prod-db',
      '--',
      '-c',
      "select pg_read_file('/etc/passwd')",
    ]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/denied/);
  });

  it('connect --exec gives any client the connection in its environment', async () => {
    const result = await stack.cli(alice, [
      'connect',
      'prod-db',
      '--exec',
      'psql -At -c "select count(*) from customers" "$DATABASE_URL" && test "$PGDATABASE" = prod-db && exit 7',
    ]);
    expect(result.stdout.trim()).toBe('5');
    expect(result.code, result.stderr).toBe(7);
  });

  it('a missing psql says how to get one', async () => {
    const result = await stack.cli(alice, ['psql', 'prod-db'], { env: { PSQL: 'no-such-psql' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no-such-psql is not installed or not on PATH/);
  });
});

describe.concurrent('shell completion', () => {
  let bin: string;
  beforeAll(() => {
    bin = mkdtempSync(join(tmpdir(), 'hoopctl-bin-'));
    temporaryHomes.push(bin);
    writeFileSync(join(bin, 'hoopctl'), `#!/bin/sh\nexec "${process.execPath}" "${HOOPCTL}" "$@"\n`);
    chmodSync(join(bin, 'hoopctl'), 0o755);
  });

  const bash = (script: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', script], {
        env: envOf(alice, { PATH: `${bin}:${process.env.PATH}` }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString('utf8');
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
      });
      child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });

  it('the bash script loads and registers hoopctl', async () => {
    const result = await bash('source <(hoopctl completion bash); complete -p hoopctl');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/complete -o default -F _hoopctl_complete hoopctl/);
  });

  it('completes commands, and connection names from the gateway', async () => {
    const drive = (words: string) =>
      bash(
        `source <(hoopctl completion bash); COMP_WORDS=(${words}); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _hoopctl_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
      );
    expect((await drive('hoopctl conn')).stdout.split('\n').filter(Boolean)).toEqual([
      'connections',
      'connect',
    ]);
    expect((await drive('hoopctl exec pr')).stdout.trim()).toBe('prod-db');
    expect((await drive('hoopctl psql ""')).stdout.trim()).toBe('prod-db');
  });

  it('zsh and fish scripts are printed', async () => {
    expect((await stack.cli(alice, ['completion', 'zsh'])).stdout).toMatch(/#compdef hoopctl/);
    expect((await stack.cli(alice, ['completion', 'fish'])).stdout).toMatch(/complete -c hoopctl/);
    expect((await stack.cli(alice, ['completion', 'tcsh'])).code).toBe(2);
  });

  it('the zsh script registers with compinit; fish completes commands and connections', async () => {
    const zsh = await bash(
      `zsh -c 'autoload -U compinit && compinit -u && source <(hoopctl completion zsh) && print -r -- \${_comps[hoopctl]}'`,
    );
    expect(zsh.code, zsh.stderr).toBe(0);
    expect(zsh.stdout.trim()).toBe('_hoopctl');
    const fish = (line: string) => bash(`fish -c 'hoopctl completion fish | source; complete -C "${line}"'`);
    const commands = await fish('hoopctl conn');
    expect(commands.code, commands.stderr).toBe(0);
    expect(commands.stdout.split('\n').map((l) => l.split('\t')[0])).toEqual(
      expect.arrayContaining(['connect', 'connections']),
    );
    expect((await fish('hoopctl exec pr')).stdout).toMatch(/^prod-db/m);
  });
});

describe.concurrent('profiles, status, token', () => {
  // Two device logins and ten CLI runs: give it room on a busy machine.
  it('two identities on one gateway as two profiles, chosen by --profile, HOOPCTL_PROFILE or profile use', {
    timeout: 180_000,
  }, async () => {
    const home = tempHome();
    const noGateway = { HOOPCTL_GATEWAY: '' };
    await loginInto(home, 'alice@example.com', 'alice-dev', ['--gateway', stack.gatewayUrl]);
    // README: "hoopctl --profile rita login": a new profile takes the default profile's gateway.
    const second = await loginInto(home, 'rita@example.com', 'rita-dev', ['--profile', 'review']);
    expect(second).toContain(
      `profile review has no gateway yet: using ${stack.gatewayUrl}, profile default's`,
    );
    const subject = async (args: string[], env: Record<string, string> = {}) =>
      (
        await stack.cli(home, [...args, 'whoami', '--json', 'identity.subject'], {
          env: { ...noGateway, ...env },
        })
      ).stdout;
    expect(JSON.parse(await subject([])).identity.subject).toBe('alice@example.com');
    expect(JSON.parse(await subject(['--profile', 'review'])).identity.subject).toBe('rita@example.com');
    expect(JSON.parse(await subject([], { HOOPCTL_PROFILE: 'review' })).identity.subject).toBe(
      'rita@example.com',
    );

    const listed = JSON.parse(
      (await stack.cli(home, ['profile', 'list', '--json'], { env: noGateway })).stdout,
    );
    expect(listed).toEqual([
      expect.objectContaining({ name: 'default', current: true, subject: 'alice@example.com' }),
      expect.objectContaining({ name: 'review', current: false, subject: 'rita@example.com' }),
    ]);
    expect((await stack.cli(home, ['profile', 'use', 'review'], { env: noGateway })).code).toBe(0);
    expect(JSON.parse(await subject([])).identity.subject).toBe('rita@example.com');
    expect((await stack.cli(home, ['profile', 'remove', 'review'], { env: noGateway })).code).toBe(0);
    const nosuch = await stack.cli(home, ['profile', 'remove', 'review'], { env: noGateway });
    expect(nosuch.code).toBe(2);
    expect(nosuch.stderr.trim()).toBe('error: no profile review to remove (profiles: default)');
    const gone = await stack.cli(home, ['--profile', 'review', 'whoami'], { env: noGateway });
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(
      /not logged in \(profile review has no gateway\): run hoopctl login --profile review --gateway URL/,
    );
    expect(JSON.parse(await subject([])).identity.subject).toBe('alice@example.com');
  });

  it('a settings file of the single-profile era keeps working as the default profile', async () => {
    const home = tempHome();
    writeFileSync(join(home, 'settings.json'), JSON.stringify({ gateway: stack.gatewayUrl }));
    writeFileSync(join(home, 'tokens.json'), readFileSync(join(alice, 'tokens.json')), { mode: 0o600 });
    const me = await stack.cli(home, ['whoami', '--json', 'identity.subject'], {
      env: { HOOPCTL_GATEWAY: '' },
    });
    expect(JSON.parse(me.stdout).identity.subject).toBe('alice@example.com');
  });

  it('status says who, where, until when; exit 3 when not logged in, naming gateway and profile', async () => {
    const status = JSON.parse((await stack.cli(alice, ['status', '--json'])).stdout);
    expect(status).toMatchObject({
      profile: 'default',
      gateway: { url: stack.gatewayUrl, reachable: true },
      login: { mode: 'device login', logged_in: true },
      identity: { subject: 'alice@example.com' },
      policies: ['engineers'],
      grants: [],
    });
    expect(Date.parse(status.token_expires_at)).toBeGreaterThan(Date.now());
    const text = await stack.cli(alice, ['status']);
    expect(text.stdout).toMatch(/identity\s+alice@example\.com/);
    const nobody = await stack.cli(tempHome(), ['status']);
    expect(nobody.code).toBe(3);
    expect(nobody.stdout).toMatch(/not logged in: run hoopctl login --gateway/);
    // No gateway at all (never logged in): still "not logged in", exit 3, and status --json keeps its shape.
    const fresh = tempHome();
    const none = { env: { HOOPCTL_GATEWAY: '' } };
    for (const args of [['whoami'], ['token'], ['status']]) {
      const out = await stack.cli(fresh, args, none);
      expect(out.code, args.join(' ')).toBe(3);
      expect(`${out.stdout}${out.stderr}`).toMatch(
        /not logged in \(profile default has no gateway\): run hoopctl login --gateway URL/,
      );
    }
    const json = await stack.cli(fresh, ['status', '--json'], none);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({
      profile: 'default',
      gateway: { url: null, reachable: false },
      login: { logged_in: false },
      grants: [],
    });
  });

  it('token prints one line; --json gives expiry and identity; --version names the gateway', async () => {
    const token = await stack.cli(alice, ['token']);
    expect(token.code, token.stderr).toBe(0);
    expect(token.stdout.trim().split('.')).toHaveLength(3);
    expect(token.stdout.trim().split('\n')).toHaveLength(1);
    const json = JSON.parse((await stack.cli(alice, ['token', '--json'])).stdout);
    expect(json).toMatchObject({
      identity: { subject: 'alice@example.com' },
      gateway: stack.gatewayUrl,
      mode: 'login',
    });
    const ci = JSON.parse(
      (await stack.cli('/nonexistent', ['token', '--json', 'mode'], { env: stack.ciEnv() })).stdout,
    );
    expect(ci).toEqual({ mode: 'client-credentials' });
    const version = await stack.cli(alice, ['--version']);
    expect(version.stdout).toMatch(
      /^hoopctl \d+\.\d+\.\d+\ngateway \d+\.\d+\.\d+ at https:\/\/localhost:\d+ \(profile default\)/,
    );
  });

  it('login --with-token takes a refresh token (or an access token) from stdin', async () => {
    const stored = JSON.parse(readFileSync(join(alice, 'tokens.json'), 'utf8')).gateways[stack.gatewayUrl];
    const home = tempHome();
    const login = await stack.cli(home, ['login', '--with-token'], { input: `${stored.refreshToken}\n` });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/subject\s+alice@example\.com/);
    const other = tempHome();
    const access = (await stack.cli(alice, ['token'])).stdout;
    const withAccess = await stack.cli(other, ['login', '--with-token'], { input: access });
    expect(withAccess.code, withAccess.stderr).toBe(0);
    expect(withAccess.stderr).toMatch(/an access token alone lasts until it expires/);
    const bogus = await stack.cli(tempHome(), ['login', '--with-token'], {
      input: 'not-a-real-token',
    });
    expect(bogus.code).toBe(3);
    // With no forced store (and no keychain here) nothing may be said to be "kept" before the check.
    const unforced = await stack.cli(tempHome(), ['login', '--with-token'], {
      input: 'not-a-real-token',
      env: { HOOPCTL_TOKEN_STORE: '' },
    });
    expect(unforced.code).toBe(3);
    expect(unforced.stderr).not.toMatch(/kept in/);
    expect(unforced.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe.concurrent('output machines can trust', () => {
  it('exec --json types values by column type; csv has a header per result set', async () => {
    const json = await stack.cli(
      '/nonexistent',
      [
        'exec',
        'prod-db',
        '--json',
        '-c',
        `select true as b, 2::int4 as i, 9007199254740993::int8 as big, 1.50::numeric as n, '{"k":1}'::jsonb as j, array[1,null] as a, null::text as t`,
      ],
      { env: stack.ciEnv() },
    );
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      b: true,
      i: 2,
      big: '9007199254740993',
      n: 1.5,
      j: { k: 1 },
      a: [1, null],
      t: null,
    });
    const csv = await stack.cli(
      '/nonexistent',
      ['exec', 'prod-db', '--format', 'csv', '-c', 'select 1 as a; select 2 as b, 3 as c'],
      {
        env: stack.ciEnv(),
      },
    );
    expect(csv.stdout).toBe('a\r\n1\r\n\r\nb,c\r\n2,3\r\n');
  });

  it('sessions list / export with a window that ends before it starts: exit 2, one line', async () => {
    for (const verb of ['list', 'export']) {
      const inverted = await stack.cli(aubrey, ['sessions', verb, '--since', '2h', '--until', '3h']);
      expect(inverted.code, verb).toBe(2);
      expect(inverted.stderr.trim()).toMatch(
        /^error: --since 2h \(.+\) is after --until 3h \(.+\): the window ends before it starts$/,
      );
    }
  });

  it('sessions show takes a short id; sessions list --identity matches a name or email prefix', async () => {
    await stack.cli(alice, ['exec', 'prod-db', '-c', 'select 1']);
    const listed = JSON.parse(
      (await stack.cli(aubrey, ['sessions', 'list', '--identity', 'alice', '--json'])).stdout,
    );
    expect(listed.sessions.length).toBeGreaterThan(0);
    for (const s of listed.sessions) expect(s.identity.subject).toBe('alice@example.com');
    const id = listed.sessions[0].id as string;
    const shown = await stack.cli(aubrey, ['sessions', 'show', id.slice(0, 8), '--json', 'id']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toEqual({ id });
    const replay = await stack.cli(aubrey, ['sessions', 'replay', id.slice(0, 8), '--speed', '0']);
    expect(replay.stdout).not.toMatch(/\[object Object\]/);
  });

  it('policy test --identity --groups works against the logged-in gateway (audit role)', async () => {
    const args = [
      'policy',
      'test',
      '--identity',
      'bob',
      '--groups',
      'engineering',
      '--connection',
      'prod-db',
    ];
    const asAuditor = await stack.cli(aubrey, [...args, '--sql', 'delete from orders', '--json', 'decision']);
    expect(asAuditor.code, asAuditor.stderr).toBe(0);
    expect(JSON.parse(asAuditor.stdout)).toEqual({ decision: 'approve' });
    const asEngineer = await stack.cli(alice, [...args, '--sql', 'select 1']);
    expect(asEngineer.code).toBe(4);
    expect(asEngineer.stderr).toMatch(/admin or audit role/);
  });
});

describe.concurrent('errors that say what to do', () => {
  it('the IdP URL instead of the gateway, and https:// to a plain-HTTP port', async () => {
    const idp = await stack.cli(alice, ['login', '--gateway', issuer]);
    expect(idp.code).toBe(2);
    expect(idp.stderr).toMatch(/is an identity provider .*not a hoop gateway/);
    const tlsMixup = await stack.cli(alice, ['status', '--gateway', issuer.replace('http:', 'https:')]);
    expect(tlsMixup.stdout).toMatch(/does not speak TLS: did you mean http:\/\//);
    const plainToTls = await stack.cli(alice, [
      'status',
      '--gateway',
      stack.gatewayUrl.replace('https:', 'http:'),
    ]);
    expect(plainToTls.stdout).toMatch(/use https:\/\//);
  });

  it('localhost vs 127.0.0.1: names the gateway it looked up and the one you are logged in to', async () => {
    const other = stack.gatewayUrl.replace('localhost', '127.0.0.1');
    const result = await stack.cli(alice, ['whoami', '--gateway', other]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`not logged in to ${other} (profile default)`);
    expect(result.stderr).toContain(`you are logged in to ${stack.gatewayUrl}`);
  });

  it('a client id without a secret, and a wrong secret', async () => {
    const half = await stack.cli(alice, ['whoami'], { env: { HOOPCTL_CLIENT_ID: 'ci-bot' } });
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/HOOPCTL_CLIENT_SECRET is not/);
    const wrong = await stack.cli(alice, ['whoami'], {
      env: { HOOPCTL_CLIENT_ID: 'ci-bot', HOOPCTL_CLIENT_SECRET: 'nope' },
    });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/check HOOPCTL_CLIENT_ID and HOOPCTL_CLIENT_SECRET/);
    expect(wrong.stderr).not.toMatch(/run hoopctl login/);
  });

  it('--home and --ca-file, before or after the command, win over the environment; an unreadable CA is named', async () => {
    const env = { HOOPCTL_HOME: '/nonexistent', HOOPCTL_CA_FILE: '/nonexistent/ca.pem' };
    const flags = ['--home', alice, '--ca-file', stack.certs!.caCert];
    for (const args of [
      [...flags, 'whoami', '--json', 'identity.subject'],
      ['whoami', '--json', 'identity.subject', ...flags],
    ]) {
      const me = await stack.cli('/nonexistent', args, { env });
      expect(me.code, me.stderr).toBe(0);
      expect(JSON.parse(me.stdout).identity.subject).toBe('alice@example.com');
    }
    const flag = await stack.cli(alice, ['whoami', '--ca-file', '/nonexistent/ca.pem']);
    expect(flag.code).toBe(2);
    expect(flag.stderr.trim()).toBe('error: cannot read the CA file /nonexistent/ca.pem (--ca-file): ENOENT');
    const variable = await stack.cli(alice, ['status'], { env: { HOOPCTL_CA_FILE: '/nonexistent/ca.pem' } });
    expect(variable.code).toBe(2);
    expect(variable.stderr).toMatch(/cannot read the CA file \/nonexistent\/ca\.pem \(HOOPCTL_CA_FILE\)/);
  });

  it('hoop-gateway --check --connect logs in to each database and reaches each issuer', async () => {
    const check = (password: string) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [GATEWAY, '--config', stack.configFile, '--check', '--connect'],
          {
            env: { ...process.env, TEST_DB_PASSWORD: password },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString('utf8');
        });
        child.stderr.on('data', (c: Buffer) => {
          out += c.toString('utf8');
        });
        child.on('exit', (code) => resolve({ code: code ?? -1, out }));
      });
    const good = await check(stack.dbPassword);
    expect(good.code, good.out).toBe(0);
    expect(good.out).toMatch(/ok\s+connection prod-db .*logged in/);
    expect(good.out).toMatch(/ok\s+issuer .*discovery and JWKS fetched/);
    const bad = await check('wrong-password');
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/FAIL\s+connection prod-db .*password/i);
  });
});
