// A program run as a FastCGI application with no web server in between, and a
// client that speaks the protocol to it: for tests of what a web server sees
// on the FastCGI connection itself (how it ends, what is left unread).
//
// The program gets a listening Unix socket as its standard input, as lighttpd
// and mod_fcgid hand it over. Node keeps no copy of it (it would accept
// connections itself), so the socket is created by a server that is closed
// once the program has it, reached through a hard link (closing unlinks the
// original path).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { cgiCommand, stopPid, assertSanitizerClean } from './rhtmx.mjs';

const BEGIN_REQUEST = 1, END_REQUEST = 3, PARAMS = 4, STDIN = 5, STDOUT = 6;

function record(type, content = Buffer.alloc(0)) {
  const pad = (8 - (content.length % 8)) % 8;
  const h = Buffer.from([1, type, 0, 1, content.length >> 8, content.length & 255, pad, 0]);
  return Buffer.concat([h, content, Buffer.alloc(pad)]);
}

function nameValue(name, value) {
  const len = (n) => (n < 128 ? Buffer.from([n]) : Buffer.from([(n >>> 24) | 128, (n >> 16) & 255, (n >> 8) & 255, n & 255]));
  const [k, v] = [Buffer.from(name), Buffer.from(value)];
  return Buffer.concat([len(k.length), len(v.length), k, v]);
}

/**
 * Start prog (a cgi-bin name) as a FastCGI application in dir; resolves { sock, pid,
 * exited (a promise of { code, signal } once the process ended), stop() }.
 */
export async function startFcgi(prog, dir, env = {}) {
  const first = path.join(dir, `${prog}.listen`), sock = path.join(dir, `${prog}.sock`);
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(first, resolve));
  fs.linkSync(first, sock);
  const [cmd, ...args] = cgiCommand(prog);
  let stderr = '';
  const child = spawn(cmd, args, { stdio: [srv._handle.fd, 'ignore', 'pipe'], env: { ...process.env, ...env } });
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await new Promise((resolve) => srv.close(resolve));
  return {
    sock,
    pid: child.pid,
    exited,
    stderr: () => stderr,
    async stop() {
      await stopPid(child.pid);
      fs.rmSync(sock, { force: true });
      assertSanitizerClean(stderr, prog);
    },
  };
}

/**
 * One request on a new connection, which this side never closes by itself:
 * resolves once the answer's END_REQUEST record arrived, with
 * { stdout (Buffer), conn (the socket, half-open allowed), ended (a promise
 * that resolves when the application closed or shut down its side) }.
 * keepConn: set FCGI_KEEP_CONN (the application keeps the connection open for
 * a next request, as nginx's fastcgi_keep_conn asks). onStdout(content, conn):
 * called with each FCGI_STDOUT record's content as it arrives.
 */
export function fcgiRequest(sockPath, params, body = Buffer.alloc(0), { keepConn = false, onStdout = null } = {}) {
  return new Promise((resolve, reject) => {
    const conn = net.connect({ path: sockPath, allowHalfOpen: true });
    const ended = new Promise((r) => conn.once('end', r));
    let buf = Buffer.alloc(0);
    const out = [];
    conn.on('error', () => {}); // the tests look at writes themselves
    conn.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 8) {
        const len = buf.readUInt16BE(4), pad = buf[6];
        if (buf.length < 8 + len + pad) break;
        const type = buf[1], content = buf.subarray(8, 8 + len);
        buf = buf.subarray(8 + len + pad);
        if (type === STDOUT) {
          out.push(content);
          if (onStdout) onStdout(content, conn);
        }
        if (type === END_REQUEST) resolve({ stdout: Buffer.concat(out), conn, ended });
      }
    });
    conn.once('connect', () => {
      const p = Buffer.concat(Object.entries(params).map(([k, v]) => nameValue(k, String(v))));
      const begin = Buffer.from([0, 1, keepConn ? 1 : 0, 0, 0, 0, 0, 0]); // role: responder
      const parts = [record(BEGIN_REQUEST, begin), record(PARAMS, p), record(PARAMS)];
      for (let i = 0; i < body.length; i += 32768) parts.push(record(STDIN, body.subarray(i, i + 32768)));
      parts.push(record(STDIN));
      conn.write(Buffer.concat(parts));
    });
    conn.once('close', () => reject(new Error('connection closed before END_REQUEST')));
  });
}

/** Resolves 'ok' if bytes can still be written to conn after ms, or the error code. */
export function writeLater(conn, ms) {
  return new Promise((resolve) => {
    setTimeout(() => {
      conn.write(record(STDIN, Buffer.from('late')), (err) => resolve(err ? err.code : 'ok'));
    }, ms);
  });
}
