/**
 * Host-side checks on a tenant's script source: wrapping it for compilation, turning V8 syntax
 * errors into KG_SCRIPT_SYNTAX with the tenant's own line and column, and making sure the source
 * is exactly one function expression.
 */
import { KeygateError } from '../errors.ts';
import type { ScriptKind } from './types.ts';

export interface SourcePosition {
  line: number;
  column: number;
}

/**
 * The source is compiled as `(\n<source>\n)` with a line offset of -1: the tenant's first line
 * keeps its columns, and V8 reports lines and columns as they are in the tenant's text.
 */
export function wrapSource(source: string): string {
  return `(\n${source}\n)`;
}
export const WRAP_LINE_OFFSET = -1;

export function scriptFilename(kind: ScriptKind): string {
  return `${kind}.js`;
}

/** 1-based line and column of a character offset. */
export function positionAt(source: string, index: number): SourcePosition {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < index && i < source.length; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: index - lineStart + 1 };
}

function endOfSource(source: string): SourcePosition {
  return positionAt(source, source.length);
}

export function scriptSyntaxError(kind: ScriptKind, reason: string, at: SourcePosition): KeygateError {
  return new KeygateError(
    'KG_SCRIPT_SYNTAX',
    `${kind} script: ${reason} at line ${at.line}, column ${at.column}`,
    { line: at.line, column: at.column },
  );
}

/**
 * isolated-vm reports a compile error as `Unexpected token ';' [request.js:2:11]`. A position past
 * the tenant's text (the wrapper's closing parenthesis) means the source ended too early.
 */
export function syntaxErrorFromCompile(kind: ScriptKind, source: string, err: unknown): KeygateError {
  const message = err instanceof Error ? err.message : String(err);
  const match = /^(.*) \[[^\]]*:(\d+):(\d+)\]$/s.exec(message);
  if (match === null) return scriptSyntaxError(kind, message, { line: 1, column: 1 });
  const reason = match[1] ?? message;
  const at = { line: Number(match[2]), column: Number(match[3]) };
  const end = endOfSource(source);
  if (at.line < 1 || at.line > end.line || (at.line === end.line && at.column > end.column)) {
    return scriptSyntaxError(kind, `${reason} (the script ends early)`, end);
  }
  return scriptSyntaxError(kind, reason, at);
}

/** Index of the first character after whitespace and comments starting at `from`, or -1 if none. */
function skipTrivia(text: string, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const ch = text[i];
    if (ch === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      i = end === -1 || end >= to ? to : end + 1;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end === -1 || end + 2 > to) return i;
      i = end + 2;
    } else if (ch !== undefined && /\s/.test(ch)) {
      i++;
    } else {
      return i;
    }
  }
  return -1;
}

/** Offset of the first character in [from, to) that is not whitespace, a comment or `paren`
 * (at most `maxParens` of them), or -1 if there is none; also how many parens were seen. */
function scanWrapping(text: string, from: number, to: number, paren: '(' | ')', maxParens: number) {
  let parens = 0;
  let i = from;
  for (;;) {
    const next = skipTrivia(text, i, to);
    if (next === -1) return { parens, badAt: -1 };
    if (text[next] !== paren || parens === maxParens) return { parens, badAt: next };
    parens++;
    i = next + 1;
  }
}

/**
 * V8 returns a function's exact source text from Function.prototype.toString. The source is one
 * function expression when that text is all it holds, apart from comments, whitespace and
 * balanced wrapping parentheses. Returns where the source breaks the rule, or null when it holds.
 * (Things like `function () {}, evil()` or `function () {}); evil(); (0` compile fine once
 * wrapped, so compiling alone is not enough.)
 */
export function findExtraCode(source: string, functionText: string): SourcePosition | null {
  let firstBad = -1;
  for (let at = source.indexOf(functionText); at !== -1; at = source.indexOf(functionText, at + 1)) {
    const before = scanWrapping(source, 0, at, '(', Number.POSITIVE_INFINITY);
    const after = scanWrapping(source, at + functionText.length, source.length, ')', before.parens);
    const bad = before.badAt !== -1 ? before.badAt : after.badAt !== -1 ? after.badAt : -1;
    if (bad === -1 && after.parens === before.parens) return null;
    if (firstBad === -1) firstBad = bad === -1 ? source.length : bad;
  }
  const start = skipTrivia(source, 0, source.length);
  return positionAt(source, firstBad !== -1 ? firstBad : Math.max(start, 0));
}

export function notOneFunctionError(kind: ScriptKind, source: string, at?: SourcePosition): KeygateError {
  const start = skipTrivia(source, 0, source.length);
  return scriptSyntaxError(
    kind,
    'the script must be exactly one function expression, e.g. `function (reqHeaders, ...) { ... }`',
    at ?? positionAt(source, Math.max(start, 0)),
  );
}
