// The archdsl VS Code client: starts `archdsl lsp` over stdio for .arch files and spec YAML files.
// Highlighting (syntaxes/) and YAML validation (contributes.yamlValidation) need no code; this file
// only wires the language server in, and restarts it when its settings change.
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;

/**
 * The documents the server analyses: every .arch file, and the YAML files matching `archdsl.yamlFiles`.
 * @param {vscode.WorkspaceConfiguration} config
 */
function documentSelector(config) {
  const yamlFiles = config.get('yamlFiles', []);
  return [
    { scheme: 'file', language: 'archdsl' },
    { scheme: 'untitled', language: 'archdsl' },
    ...yamlFiles.map((pattern) => ({ scheme: 'file', language: 'yaml', pattern })),
  ];
}

/**
 * How the server is started: `<archdsl.path> lsp`, talking over stdin/stdout. `${workspaceFolder}`
 * in the path stands for the first workspace folder (VS Code does not expand it in settings), so a
 * project's own virtual environment can be named: `${workspaceFolder}/.venv/bin/archdsl`.
 * @param {vscode.WorkspaceConfiguration} config
 */
function serverOptions(config) {
  const folders = vscode.workspace.workspaceFolders || [];
  const root = folders.length > 0 ? folders[0].uri.fsPath : '.';
  const command = (config.get('path', 'archdsl') || 'archdsl').split('${workspaceFolder}').join(root);
  return { command, args: ['lsp'], transport: TransportKind.stdio };
}

/**
 * The server's options (its `initializationOptions`): debounce delay, design rules, the least severity
 * shown, import folders (docs/lsp.md, "Settings").
 * @param {vscode.WorkspaceConfiguration} config
 */
function initializationOptions(config) {
  return {
    debounce: config.get('debounceMs', 200),
    rules: config.get('rules', true),
    severity: config.get('severity', 'warning'),
    searchPaths: config.get('searchPaths', []),
  };
}

/** Start a client for the current settings. */
async function startClient() {
  const config = vscode.workspace.getConfiguration('archdsl');
  client = new LanguageClient('archdsl', 'archdsl language server', serverOptions(config), {
    documentSelector: documentSelector(config),
    initializationOptions: initializationOptions(config),
  });
  await client.start();
}

/** Stop the running client, if any. */
async function stopClient() {
  const running = client;
  client = undefined;
  if (running) {
    await running.stop();
  }
}

/** Restart the server: after `archdsl.restartServer`, or when an `archdsl.*` setting changes. */
async function restart() {
  await stopClient();
  await startClient();
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('archdsl.restartServer', restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('archdsl')) {
        return restart();
      }
      return undefined;
    }),
  );
  await startClient();
}

function deactivate() {
  return stopClient();
}

module.exports = { activate, deactivate, documentSelector, initializationOptions, serverOptions };
