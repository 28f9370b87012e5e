// Unit test of extension.js without VS Code: `vscode` and `vscode-languageclient/node` are replaced
// by recording fakes, so the test checks what the extension asks of them (the server command, the
// documents sent to the server, restart on a settings change, stop on deactivate).
// Run with `node --test tests/` from editors/vscode.
'use strict';

const assert = require('node:assert/strict');
const Module = require('node:module');
const path = require('node:path');
const test = require('node:test');

const settings = { path: '/opt/venv/bin/archdsl', yamlFiles: ['**/specs/**/*.yaml'], debounceMs: 50, rules: false };
const clients = [];
const commands = {};
let onConfig;

class FakeLanguageClient {
  constructor(id, name, serverOptions, clientOptions) {
    Object.assign(this, { id, name, serverOptions, clientOptions, started: 0, stopped: 0 });
    clients.push(this);
  }
  async start() { this.started += 1; }
  async stop() { this.stopped += 1; }
}

const fakes = {
  vscode: {
    workspace: {
      workspaceFolders: [{ uri: { fsPath: '/home/me/project' } }],
      getConfiguration: (section) => {
        assert.equal(section, 'archdsl');
        return { get: (key, fallback) => (key in settings ? settings[key] : fallback) };
      },
      onDidChangeConfiguration: (listener) => { onConfig = listener; return { dispose() {} }; },
    },
    commands: { registerCommand: (name, fn) => { commands[name] = fn; return { dispose() {} }; } },
  },
  'vscode-languageclient/node': { LanguageClient: FakeLanguageClient, TransportKind: { stdio: 0 } },
};
const load = Module._load;
Module._load = function fakeLoad(request, ...rest) {
  return request in fakes ? fakes[request] : load.call(this, request, ...rest);
};
const extension = require(path.join(__dirname, '..', 'extension.js'));

test('activate starts `<archdsl.path> lsp` over stdio for .arch and the spec YAML files', async () => {
  const context = { subscriptions: [] };
  await extension.activate(context);
  assert.equal(clients.length, 1);
  const [client] = clients;
  assert.equal(client.started, 1);
  assert.deepEqual(client.serverOptions, { command: '/opt/venv/bin/archdsl', args: ['lsp'], transport: 0 });
  assert.deepEqual(client.clientOptions.documentSelector, [
    { scheme: 'file', language: 'archdsl' },
    { scheme: 'untitled', language: 'archdsl' },
    { scheme: 'file', language: 'yaml', pattern: '**/specs/**/*.yaml' },
  ]);
  // the server's own option names (archdsl/lsp/server.py Settings); unset ones take the defaults
  assert.deepEqual(client.clientOptions.initializationOptions, { debounce: 50, rules: false, severity: 'warning', searchPaths: [] });
  assert.equal(context.subscriptions.length, 2);
  assert.equal(typeof commands['archdsl.restartServer'], 'function');
});

test('a change of an archdsl setting restarts the server with the new command; others do not', async () => {
  settings.path = 'archdsl-dev';
  await onConfig({ affectsConfiguration: (section) => section === 'editor' });
  assert.equal(clients.length, 1);
  await onConfig({ affectsConfiguration: (section) => section === 'archdsl' });
  assert.equal(clients.length, 2);
  assert.equal(clients[0].stopped, 1);
  assert.equal(clients[1].serverOptions.command, 'archdsl-dev');
});

test('${workspaceFolder} in archdsl.path is the first workspace folder', async () => {
  settings.path = '${workspaceFolder}/.venv/bin/archdsl';
  await commands['archdsl.restartServer']();
  assert.equal(clients.at(-1).serverOptions.command, '/home/me/project/.venv/bin/archdsl');
});

test('an empty archdsl.path falls back to `archdsl`; deactivate stops the server', async () => {
  settings.path = '';
  await commands['archdsl.restartServer']();
  assert.equal(clients[3].serverOptions.command, 'archdsl');
  await extension.deactivate();
  assert.equal(clients[3].stopped, 1);
  await extension.deactivate(); // nothing left to stop
  assert.equal(clients[3].stopped, 1);
});
