// Upload-ready binaries: builds the project the default way (RHTMX_STATIC=AUTO, which is ON
// where the libraries' archives are installed, as on Debian) and with FULL, in folders of
// its own, then checks what a customer gets:
//   - the programs' dynamic dependencies are only the C library (readelf -d);
//   - `cmake --install` lays out cgi-bin/ with the programs, the .htaccess and an
//     example config, plus the operator tool and its man page;
//   - `cpack` makes a tarball of that tree;
//   - the unpacked programs answer inside a chroot that holds nothing but the C
//     library (FULL: nothing at all), i.e. on a host with none of libfcgi, json-c,
//     SQLite or zlib installed (needs root for chroot; skipped otherwise);
//   - the unpacked cgi-bin/, uploaded with its .htaccess, works behind Apache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { SOURCE, tmpdir, makeApp, parseCgi, neededLibs, runCgi } from '../harness/rhtmx.mjs';
import { startApache, checkPull, checkClientJs, checkPush, sql } from '../harness/apache.mjs';

const BUILD = process.env.RHTMX_BUILD ?? path.resolve('build');
const PROGRAMS = ['sync-pull', 'sync-push', 'sync-events', 'client-js'];
// What "only the C library" means, on any architecture glibc supports.
const LIBC = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux[-.\w]*\.so\.\d|ld64\.so\.\d|libgcc_s\.so\.1)$/;

const CHROOT = ['/usr/sbin/chroot', '/usr/bin/chroot'].find((p) => fs.existsSync(p)) ?? 'chroot';
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });

/** Configure a fresh folder with RHTMX_STATIC=kind (null: not given, the default);
 * what configuring printed. */
function configure(dir, kind) {
  fs.rmSync(dir, { recursive: true, force: true });
  return run('cmake', ['-S', SOURCE, '-B', dir, ...(kind ? [`-DRHTMX_STATIC=${kind}`] : []),
    '-DCMAKE_BUILD_TYPE=Release', '-DRHTMX_TESTS=OFF']);
}

function build(kind, expect = kind) {
  const dir = path.join(BUILD, `static-check-${(kind ?? 'default').toLowerCase()}`);
  const out = configure(dir, kind);
  assert.match(out, new RegExp(`RHTMX_STATIC=${kind ?? 'AUTO'} \\(${expect}\\): libfcgi, json-c, SQLite and zlib link statically`));
  run('cmake', ['--build', dir, '-j2'], { maxBuffer: 64 << 20 });
  return dir;
}


/** The newest GLIBC_x.y symbol version file needs (the oldest glibc it runs on). */
function glibcFloor(file) {
  const versions = [...run('objdump', ['-T', file]).matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return versions.length ? versions.at(-1).join('.') : 'none';
}

function installAndPack(dir) {
  const prefix = tmpdir('install');
  run('cmake', ['--install', dir, '--prefix', prefix, '--strip']);
  for (const p of PROGRAMS) {
    const st = fs.statSync(path.join(prefix, 'cgi-bin', p));
    assert.ok(st.mode & 0o111, `${p} is executable`);
  }
  const htaccess = fs.readFileSync(path.join(prefix, 'cgi-bin/.htaccess'), 'utf8');
  assert.equal(htaccess, fs.readFileSync(path.join(SOURCE, 'apache/.htaccess'), 'utf8'));
  JSON.parse(fs.readFileSync(path.join(prefix, 'cgi-bin/rhtmx-sync.json.example'), 'utf8'));
  assert.ok(fs.existsSync(path.join(prefix, 'bin/rhtmx-sync')), 'the operator tool');
  assert.ok(!fs.existsSync(path.join(prefix, 'cgi-bin/rhtmx-sync')), 'the operator tool stays out of the web folder');
  assert.match(fs.readFileSync(path.join(prefix, 'share/man/man1/rhtmx-sync.1'), 'utf8'), /^\.TH RHTMX-SYNC 1/m);
  assert.ok(fs.existsSync(path.join(prefix, 'share/doc/rhtmx-sync/DEPLOY.md')));

  const out = run('cpack', ['-G', 'TGZ', '--config', path.join(dir, 'CPackConfig.cmake'), '-B', path.join(dir, 'package')]);
  const tarball = out.match(/package: (\S+\.tar\.gz) generated/)?.[1];
  assert.ok(tarball && fs.existsSync(tarball), `cpack made no tarball:\n${out}`);
  const listing = run('tar', ['tzf', tarball]).split('\n').filter(Boolean);
  const top = listing[0].split('/')[0];
  assert.match(top, /^rhtmx-sync-\d+\.\d+\.\d+-linux-/);
  for (const f of [...PROGRAMS.map((p) => `cgi-bin/${p}`), 'cgi-bin/.htaccess', 'cgi-bin/rhtmx-sync.json.example', 'bin/rhtmx-sync']) {
    assert.ok(listing.includes(`${top}/${f}`), `${f} is in the tarball`);
  }
  const unpacked = tmpdir('unpacked');
  run('tar', ['xzf', tarball, '-C', unpacked]);
  return { prefix, tarball, root: path.join(unpacked, top) };
}

/**
 * A root file system holding only the given shared libraries, the unpacked
 * programs and an app; run each program in it as CGI with chroot(8).
 */
function chrootCheck(t, pkgRoot, libs) {
  if (process.getuid() !== 0) {
    t.diagnostic('not root: the chroot check (a host with only the C library) is skipped');
    return;
  }
  const root = tmpdir('chroot');
  for (const lib of libs) {
    fs.mkdirSync(path.join(root, path.dirname(lib)), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), path.join(root, lib));
  }
  fs.cpSync(path.join(pkgRoot, 'cgi-bin'), path.join(root, 'cgi-bin'), { recursive: true });
  fs.cpSync(path.join(pkgRoot, 'bin'), path.join(root, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'data'));
  sql(path.join(root, 'data/app.db'), `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
    INSERT INTO todos (title) VALUES ('inside'), ('the chroot');`);
  fs.writeFileSync(path.join(root, 'data/rhtmx-sync.json'),
    JSON.stringify({ database: 'app.db', entities: ['todos'], auth: { mode: 'none' } }));
  assert.deepEqual(fs.readdirSync(path.join(root)).sort(), [...new Set(['bin', 'cgi-bin', 'data', ...libs.map((l) => l.split('/')[1])])].sort());

  const tool = spawnSync(CHROOT, [root, '/bin/rhtmx-sync', 'init', '--config', '/data/rhtmx-sync.json'], { encoding: 'utf8', env: {} });
  assert.equal(tool.status, 0, `rhtmx-sync init in the chroot: ${tool.stderr}`);
  assert.match(tool.stdout, /^todos\s+todos\s+2\s+2\s+ok$/m);

  const cgi = (prog, { method = 'GET', pathInfo = '', query = '', body = '' } = {}) => {
    const r = spawnSync(CHROOT, [root, `/cgi-bin/${prog}`], {
      input: body,
      env: { GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: method, PATH_INFO: pathInfo, QUERY_STRING: query,
        SCRIPT_NAME: '/api/sync', SERVER_PROTOCOL: 'HTTP/1.1', RHTMX_SYNC_CONFIG: '/data/rhtmx-sync.json',
        ...(body ? { CONTENT_LENGTH: String(Buffer.byteLength(body)), CONTENT_TYPE: 'application/json' } : {}) },
    });
    assert.equal(r.status, 0, `${prog} in the chroot: ${r.stderr}`);
    return parseCgi(r.stdout);
  };
  const pull = cgi('sync-pull', { pathInfo: '/todos', query: 'since=0' });
  assert.equal(pull.status, 200, pull.text());
  assert.deepEqual(pull.json().changes.map((c) => c.data.title), ['inside', 'the chroot']);
  const js = cgi('client-js');
  assert.equal(js.status, 200);
  assert.ok(js.body.length > 1000);
  const push = cgi('sync-push', { method: 'POST', pathInfo: '/todos',
    body: JSON.stringify({ client_id: 'c-1', changes: [{ mutation_id: 'm-1', id: 'tmp-1', action: 'create', data: { title: 'pushed' }, client_version: 0 }] }) });
  assert.equal(push.status, 200, push.text());
  const events = cgi('sync-events', { query: 'entities=todos&since=0&mode=poll' });
  assert.equal(events.status, 200, events.text());
}

/** The C library files a dynamically linked program loads: from ldd, nothing else. */
function libcFiles(file) {
  const out = run('ldd', [file]);
  const files = [];
  for (const line of out.split('\n')) {
    const m = line.match(/=>\s+(\/\S+)/) ?? line.match(/^\s+(\/\S+)\s+\(/);
    if (m) files.push(m[1]);
  }
  return files;
}

test('the default build (RHTMX_STATIC=AUTO, here ON): only the C library is needed; install, tarball, chroot, Apache', async (t) => {
  // Debian's -dev packages ship the archives, so a plain configure links them in.
  const dir = build(null, 'ON');
  const bins = [...PROGRAMS.map((p) => path.join(dir, 'cgi-bin', p)), path.join(dir, 'cgi-bin/rhtmx-sync')];
  for (const b of bins) {
    const deps = neededLibs(b);
    assert.ok(deps.includes('libc.so.6'), `${b}: ${deps}`);
    assert.deepEqual(deps.filter((d) => !LIBC.test(d)), [], `${path.basename(b)} needs more than the C library`);
  }
  t.diagnostic(`glibc needed: ${glibcFloor(path.join(dir, 'cgi-bin/sync-pull'))} or newer (RHTMX_STATIC=FULL has no such floor)`);
  // Built without RHTMX_POSTGRES (the default): a config naming PostgreSQL is a
  // configuration error that says how to get it, in both of its forms.
  for (const database of ['postgresql://app@db.example/app', { postgresql: 'postgres://app@db.example/app', password_file: 'pw' }]) {
    const cfgDir = tmpdir('nopg');
    fs.writeFileSync(path.join(cfgDir, 'rhtmx-sync.json'), JSON.stringify({ database, entities: ['todos'], auth: { mode: 'none' } }));
    const r = runCgi(path.join(dir, 'cgi-bin/sync-pull'), { config: path.join(cfgDir, 'rhtmx-sync.json'), path: '/todos', wrapper: [] });
    assert.equal(r.status, 500);
    assert.equal(r.json().error.code, 'config');
    assert.match(r.stderr, /"database" names PostgreSQL, but these programs were built without PostgreSQL support \(build with cmake -DRHTMX_POSTGRES=ON/);
  }

  const pkg = installAndPack(dir);
  const libs = libcFiles(path.join(pkg.root, 'cgi-bin/sync-pull'));
  assert.ok(libs.every((l) => LIBC.test(path.basename(l))), `ldd lists more than the C library: ${libs}`);
  chrootCheck(t, pkg.root, libs);

  // Upload the unpacked cgi-bin/ with its own .htaccess and serve it.
  const app = makeApp();
  const srv = await startApache(app, { fcgid: 'default', from: path.join(pkg.root, 'cgi-bin'), htaccess: path.join(pkg.root, 'cgi-bin/.htaccess') });
  try {
    await checkClientJs(srv.url);
    await checkPull(srv.url, app);
    await t.test('push through the uploaded programs', () => checkPush(srv.url, app));
  } finally {
    await srv.stop();
  }
});

test('RHTMX_STATIC=ON, given, configures as the default does here; OFF links the shared libraries', () => {
  assert.match(configure(path.join(BUILD, 'static-check-on'), 'ON'), /RHTMX_STATIC=ON \(ON\): libfcgi, json-c, SQLite and zlib link statically/);
  const off = configure(path.join(BUILD, 'static-check-off'), 'OFF');
  assert.doesNotMatch(off, /link statically/);
});

test('RHTMX_POSTGRES=ON links the shared libraries under AUTO, and refuses a static build', () => {
  const dir = path.join(BUILD, 'static-check-pg');
  fs.rmSync(dir, { recursive: true, force: true });
  const auto = run('cmake', ['-S', SOURCE, '-B', dir, '-DRHTMX_POSTGRES=ON', '-DCMAKE_BUILD_TYPE=Release', '-DRHTMX_TESTS=OFF']);
  assert.match(auto, /RHTMX_STATIC=AUTO: linking the shared libraries \(RHTMX_POSTGRES=ON\)/);
  fs.rmSync(dir, { recursive: true, force: true });
  const on = spawnSync('cmake', ['-S', SOURCE, '-B', dir, '-DRHTMX_POSTGRES=ON', '-DRHTMX_STATIC=ON', '-DRHTMX_TESTS=OFF'], { encoding: 'utf8' });
  assert.notEqual(on.status, 0);
  assert.match(on.stderr, /RHTMX_STATIC=ON and RHTMX_POSTGRES=ON do not mix/);
});

test('RHTMX_STATIC=FULL: no shared library at all; runs in an empty chroot', (t) => {
  const dir = build('FULL');
  for (const p of [...PROGRAMS, 'rhtmx-sync']) {
    const b = path.join(dir, 'cgi-bin', p);
    assert.deepEqual(neededLibs(b), [], `${p} is fully static`);
    assert.doesNotMatch(run('readelf', ['-l', b]), /Requesting program interpreter/, `${p} has no ELF interpreter`);
  }
  const pkg = installAndPack(dir);
  assert.match(path.basename(pkg.root), /fullstatic$/);
  chrootCheck(t, pkg.root, []);
});
