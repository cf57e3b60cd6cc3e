// `ulimit` in `sh -c` scripts, read the way bash, dash and BusyBox ash read it, and run on a model of
// setrlimit: the script runs as the container user, so raising a hard limit without CAP_SYS_RESOURCE
// fails with EPERM and the script goes on with the old limit (unless `set -e` or `&&` stops it); nofile
// above fs.nr_open fails even for root. The dialects differ, checked against the real shells:
//   bash: `-n N` sets soft and hard; several options in one call; `-u` processes, `-p` pipe size (read-only);
//         values may be `unlimited`, `hard`, `soft`.
//   dash: `-n N` sets both; one resource per call ("too many arguments"); `-p` processes, `-u` illegal;
//         of -H and -S only the last counts; values number or `unlimited`.
//   ash (BusyBox): like bash for options, `-u` processes, `-p` invalid; values number or `unlimited`.
// Only literal shell text and the container's known environment are used: anything else is "unresolved"
// and never leads to a denial.

export type Dialect = 'bash' | 'dash' | 'ash';
export const ALL_DIALECTS: readonly Dialect[] = ['bash', 'dash', 'ash'];

/** RLIM_INFINITY. */
export const UNLIMITED = Number.POSITIVE_INFINITY;
/** The kernel's default fs.nr_open (1 << 20): no nofile limit may exceed it, root or not. */
export const DEFAULT_NR_OPEN = 1_048_576;

export type LimitName = 'nofile' | 'nproc';

export interface Limit {
  soft: number;
  hard: number;
}

// ---- words: literal text and parameter expansions, expanded when the command runs ----

type WordPart =
  | { kind: 'text'; text: string }
  | { kind: 'param'; name: string; op: '' | ':-' | '-' | ':=' | '='; word: WordPart[] }
  | { kind: 'unknown' };

interface Word {
  parts: WordPart[];
}

type Connector = ';' | '&&' | '||' | '|' | '&' | 'start';

interface Command {
  words: Word[];
  /** What links this command to the previous one. */
  before: Connector;
  /** What links it to the next one (set once the next command starts). */
  after: Connector;
  /** Inside if/while/for/case, after `||`, or in a `( … )` subshell or a pipeline. */
  conditional: boolean;
  subshell: boolean;
}

const KEYWORDS_OPEN = new Set(['if', 'while', 'until', 'for', 'case', 'select']);
const KEYWORDS_CLOSE = new Set(['fi', 'done', 'esac']);
const KEYWORDS_NEUTRAL = new Set(['then', 'else', 'elif', 'do', '{', '}', '!', 'in']);
const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/** Splits a script into simple commands; never throws (unbalanced quotes run to the end). */
export function parseScript(script: string): Command[] {
  const commands: Command[] = [];
  let words: Word[] = [];
  let parts: WordPart[] = [];
  let text = '';
  let inWord = false;
  let before: Connector = 'start';
  let depth = 0;
  let subshellDepth = 0;

  const flushText = (): void => {
    if (text.length > 0) {
      parts.push({ kind: 'text', text });
      text = '';
    }
  };
  // The word after a redirection operator is its target (`> /dev/null`, `2>&1`), not an argument.
  let dropNextWord = false;
  const endWord = (): void => {
    flushText();
    if (inWord) {
      if (dropNextWord) dropNextWord = false;
      else words.push({ parts });
    }
    parts = [];
    inWord = false;
  };
  const endCommand = (connector: Connector): void => {
    endWord();
    if (words.length > 0) {
      // Keywords lead a command ("then ulimit …"); strip them and track the nesting they open.
      let first = literalOf(words[0] as Word);
      while (first !== undefined && (KEYWORDS_OPEN.has(first) || KEYWORDS_CLOSE.has(first) || KEYWORDS_NEUTRAL.has(first))) {
        if (KEYWORDS_OPEN.has(first)) depth++;
        if (KEYWORDS_CLOSE.has(first)) depth = Math.max(0, depth - 1);
        words.shift();
        first = words.length > 0 ? literalOf(words[0] as Word) : undefined;
      }
      if (words.length > 0) {
        const conditional = depth > 0 || before === '||' || before === '|' || connector === '|' || subshellDepth > 0;
        commands.push({ words, before, after: connector, conditional, subshell: subshellDepth > 0 || before === '|' || connector === '|' || connector === '&' });
      }
    }
    words = [];
    dropNextWord = false;
    before = connector;
  };

  let i = 0;
  const n = script.length;
  while (i < n) {
    const c = script[i] as string;
    if (c === '\\') {
      if (script[i + 1] === '\n') {
        i += 2;
        continue;
      }
      inWord = true;
      text += script[i + 1] ?? '';
      i += 2;
      continue;
    }
    if (c === "'") {
      inWord = true;
      const close = script.indexOf("'", i + 1);
      const end = close < 0 ? n : close;
      text += script.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      inWord = true;
      i++;
      while (i < n && script[i] !== '"') {
        const d = script[i] as string;
        if (d === '\\' && i + 1 < n && '$`"\\\n'.includes(script[i + 1] as string)) {
          if (script[i + 1] !== '\n') text += script[i + 1];
          i += 2;
        } else if (d === '$') {
          i = readDollar(script, i);
        } else if (d === '`') {
          const close = script.indexOf('`', i + 1);
          flushText();
          parts.push({ kind: 'unknown' });
          i = close < 0 ? n : close + 1;
        } else {
          text += d;
          i++;
        }
      }
      i++;
      continue;
    }
    if (c === '$') {
      inWord = true;
      i = readDollar(script, i);
      continue;
    }
    if (c === '`') {
      inWord = true;
      const close = script.indexOf('`', i + 1);
      flushText();
      parts.push({ kind: 'unknown' });
      i = close < 0 ? n : close + 1;
      continue;
    }
    if (c === '#' && !inWord) {
      const newline = script.indexOf('\n', i);
      i = newline < 0 ? n : newline;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
      i++;
      continue;
    }
    if (c === '\n' || c === ';') {
      endCommand(';');
      i += script[i + 1] === ';' && c === ';' ? 2 : 1;
      continue;
    }
    if (c === '>' || c === '<') {
      // A redirection: `N>`, `>>`, `>&`, `<&`, `>|`, `<>`; a pending all-digit word is its fd number.
      if (inWord && parts.length === 0 && /^[0-9]+$/.test(text)) {
        text = '';
        inWord = false;
      } else {
        endWord();
      }
      const next = script[i + 1];
      i += next === '>' || next === '&' || next === '|' || (c === '<' && next === '>') ? 2 : 1;
      dropNextWord = true;
      continue;
    }
    if (c === '&' && script[i + 1] === '>') {
      // bash's `&>file`: a redirection of stdout and stderr, not a background job.
      endWord();
      i++;
      continue;
    }
    if (c === '&' || c === '|') {
      const doubled = script[i + 1] === c;
      endCommand(doubled ? (c === '&' ? '&&' : '||') : c === '&' ? '&' : '|');
      i += doubled ? 2 : 1;
      continue;
    }
    if (c === '(') {
      endWord();
      if (words.length > 0) endCommand(';');
      subshellDepth++;
      i++;
      continue;
    }
    if (c === ')') {
      endCommand(';');
      subshellDepth = Math.max(0, subshellDepth - 1);
      i++;
      continue;
    }
    inWord = true;
    text += c;
    i++;
  }
  endCommand(';');
  return commands;

  // Reads `$NAME`, `${NAME…}`, `$(…)`, `$((…))` or a special parameter at script[start] = '$'.
  function readDollar(s: string, start: number): number {
    const next = s[start + 1];
    if (next === undefined) {
      text += '$';
      return start + 1;
    }
    if (next === '{') {
      const close = s.indexOf('}', start + 2);
      const end = close < 0 ? s.length : close;
      const body = s.slice(start + 2, end);
      flushText();
      const match = /^([A-Za-z_][A-Za-z0-9_]*)(:-|:=|-|=)?([\s\S]*)$/.exec(body);
      if (match && (match[2] !== undefined || match[3] === '')) {
        const defaultParts: WordPart[] = match[3] ? [{ kind: 'text', text: match[3] }] : [];
        parts.push({ kind: 'param', name: match[1] as string, op: (match[2] ?? '') as '' | ':-' | '-' | ':=' | '=', word: defaultParts });
      } else {
        parts.push({ kind: 'unknown' });
      }
      return end + 1;
    }
    if (next === '(') {
      // Command substitution or arithmetic: skip to the balancing parenthesis.
      let level = 0;
      let j = start + 1;
      for (; j < s.length; j++) {
        if (s[j] === '(') level++;
        else if (s[j] === ')' && --level === 0) break;
      }
      flushText();
      parts.push({ kind: 'unknown' });
      return j + 1;
    }
    if (NAME_START.test(next)) {
      let j = start + 1;
      while (j < s.length && NAME_CHAR.test(s[j] as string)) j++;
      flushText();
      parts.push({ kind: 'param', name: s.slice(start + 1, j), op: '', word: [] });
      return j;
    }
    if (/[0-9@*#?$!-]/.test(next)) {
      flushText();
      parts.push({ kind: 'unknown' });
      return start + 2;
    }
    text += '$';
    return start + 1;
  }
}

function literalOf(word: Word): string | undefined {
  if (word.parts.length === 0) return '';
  if (word.parts.length === 1 && word.parts[0]?.kind === 'text') return word.parts[0].text;
  return undefined;
}

/** A shell variable: a known string, unset, or unknowable (ConfigMap, Secret, command output). */
export type ShellValue = string | undefined | null;

function expandWord(word: Word, vars: (name: string) => ShellValue): string | null {
  let out = '';
  for (const part of word.parts) {
    if (part.kind === 'text') out += part.text;
    else if (part.kind === 'unknown') return null;
    else {
      const value = vars(part.name);
      if (value === null) return null;
      const useDefault = part.op === ':-' || part.op === ':=' ? value === undefined || value === '' : part.op === '-' || part.op === '=' ? value === undefined : false;
      if (useDefault) {
        const fallback = expandWord({ parts: part.word }, vars);
        if (fallback === null) return null;
        out += fallback;
      } else {
        out += value ?? '';
      }
    }
  }
  return out;
}

// ---- running the ulimit commands ----

export type UlimitEventKind =
  | 'eperm-hard-raise'
  | 'eperm-nr-open'
  | 'einval-soft-above-hard'
  | 'illegal-option'
  | 'bad-number'
  | 'too-many-arguments'
  | 'unresolved';

export interface UlimitEvent {
  kind: UlimitEventKind;
  resource?: LimitName | 'pipe';
  /** The failed call stopped the script (set -e, or `&&` led to the rest). */
  fatal: boolean;
  /** Whether the call surely ran (not inside a conditional, subshell or pipeline). */
  certain: boolean;
  /** The option as written, e.g. `-u`. */
  option?: string;
  /** Limits the failed call meant to set (it set none of them). */
  touches?: LimitName[];
  requested?: number;
}

export interface ShellOutcome {
  dialect: Dialect;
  /** Limits when the main program starts (at `exec`, or the end of the script). */
  nofile: Limit;
  nproc: Limit;
  /** Each limit the script set for sure (ran unconditionally and succeeded). */
  set: { nofile: boolean; nproc: boolean };
  /** A ulimit whose effect cannot be known ran: the final limits are not certain. */
  uncertain: boolean;
  events: UlimitEvent[];
  /** The script issues ulimit at all. */
  usesUlimit: boolean;
}

export interface ShellRunOptions {
  initial: { nofile: Limit; nproc: Limit };
  /** CAP_SYS_RESOURCE in the effective set: root without a drop. `unknown` when runAsUser is unset. */
  canRaiseHard: boolean | 'unknown';
  errexit: boolean;
  nrOpen: number;
  env: (name: string) => ShellValue;
}

interface ResourceOption {
  letter: string;
  resource: LimitName | 'pipe' | 'other';
}

function resourceFor(dialect: Dialect, letter: string): ResourceOption | 'illegal' {
  if (letter === 'n') return { letter, resource: 'nofile' };
  if (letter === 'u') return dialect === 'dash' ? 'illegal' : { letter, resource: 'nproc' };
  if (letter === 'p') {
    if (dialect === 'dash') return { letter, resource: 'nproc' };
    if (dialect === 'bash') return { letter, resource: 'pipe' };
    return 'illegal';
  }
  if ('cdefilmqrstvx'.includes(letter)) return { letter, resource: 'other' };
  return 'illegal';
}

function parseLimitValue(dialect: Dialect, value: string, current: Limit, hard: boolean): number | 'bad' {
  if (value === 'unlimited') return UNLIMITED;
  if (dialect === 'bash' && value === 'hard') return current.hard;
  if (dialect === 'bash' && value === 'soft') return hard ? current.hard : current.soft;
  if (/^[0-9]+$/.test(value)) return Number(value);
  return 'bad';
}

interface UlimitCall {
  mode: { soft: boolean; hard: boolean };
  settings: { option: ResourceOption; value: string }[];
  error?: UlimitEventKind;
  errorOption?: string;
}

/** Parses the arguments of one `ulimit` call in a dialect. */
function parseUlimitCall(dialect: Dialect, args: readonly string[]): UlimitCall {
  let soft = false;
  let hard = false;
  const settings: { option: ResourceOption; value: string }[] = [];
  let pending: ResourceOption | undefined;
  let operands = 0;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg.startsWith('-') && arg.length > 1 && !/^-[0-9]/.test(arg)) {
      if (dialect === 'dash' && operands > 0) return { mode: { soft, hard }, settings, error: 'too-many-arguments' };
      if (arg === '--') continue;
      for (const letter of arg.slice(1)) {
        // dash keeps only the last of -H and -S (`-SH` sets the hard limit alone); bash and ash add them up.
        if (letter === 'H') {
          hard = true;
          if (dialect === 'dash') soft = false;
        } else if (letter === 'S') {
          soft = true;
          if (dialect === 'dash') hard = false;
        }
        else if (letter === 'a') pending = undefined;
        else {
          const option = resourceFor(dialect, letter);
          if (option === 'illegal') return { mode: { soft, hard }, settings, error: 'illegal-option', errorOption: `-${letter}` };
          pending = option;
        }
      }
      continue;
    }
    operands++;
    if (dialect === 'dash' && operands > 1) return { mode: { soft, hard }, settings, error: 'too-many-arguments' };
    settings.push({ option: pending ?? { letter: 'f', resource: 'other' }, value: arg });
    if (dialect !== 'dash') pending = undefined;
  }
  // Neither -H nor -S: all three dialects set both when setting.
  if (!soft && !hard) {
    soft = true;
    hard = true;
  }
  return { mode: { soft, hard }, settings };
}

/** The limits a ulimit call names, read loosely (any dialect): for calls that failed to parse. */
function mentionedLimits(args: readonly string[]): LimitName[] {
  const touched = new Set<LimitName>();
  for (const arg of args) {
    if (!/^-[a-zA-Z]+$/.test(arg)) continue;
    if (arg.includes('n')) touched.add('nofile');
    if (arg.includes('u')) touched.add('nproc');
  }
  return [...touched];
}

/** Runs the script's ulimit calls in one dialect on a model of the process's limits. */
export function runUlimits(commands: readonly Command[], dialect: Dialect, options: ShellRunOptions): ShellOutcome {
  const limits: Record<LimitName, Limit> = { nofile: { ...options.initial.nofile }, nproc: { ...options.initial.nproc } };
  const set = { nofile: false, nproc: false };
  const events: UlimitEvent[] = [];
  let uncertain = false;
  let usesUlimit = false;
  let errexit = options.errexit;
  const shellVars = new Map<string, string | null>();
  const lookup = (name: string): ShellValue => (shellVars.has(name) ? (shellVars.get(name)) : options.env(name));

  for (const command of commands) {
    const first = literalOf(command.words[0] as Word);
    // Leading assignments (N=65536 ulimit -n $N, or a bare N=65536).
    let start = 0;
    const assignments: [string, string | null][] = [];
    for (; start < command.words.length; start++) {
      const word = command.words[start] as Word;
      const head = word.parts[0];
      if (!head || head.kind !== 'text') break;
      const eq = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(head.text);
      if (!eq) break;
      const rest: Word = { parts: [{ kind: 'text', text: head.text.slice(eq[0].length) }, ...word.parts.slice(1)] };
      assignments.push([eq[1] as string, expandWord(rest, lookup)]);
    }
    if (start === command.words.length) {
      if (!command.subshell) for (const [name, value] of assignments) shellVars.set(name, command.conditional ? null : value);
      continue;
    }
    const name = start === 0 ? first : literalOf(command.words[start] as Word);
    if (name === 'set' && !command.subshell) {
      for (const word of command.words.slice(start + 1)) {
        const flag = literalOf(word);
        if (flag && /^-[a-zA-Z]*e/.test(flag)) errexit = true;
        if (flag && /^\+[a-zA-Z]*e/.test(flag)) errexit = false;
        if (flag === 'errexit') errexit = true;
      }
      continue;
    }
    if (name === 'export' && !command.subshell) {
      for (const word of command.words.slice(start + 1)) {
        const head = word.parts[0];
        if (head?.kind !== 'text') continue;
        const eq = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(head.text);
        if (!eq) continue;
        const rest: Word = { parts: [{ kind: 'text', text: head.text.slice(eq[0].length) }, ...word.parts.slice(1)] };
        shellVars.set(eq[1] as string, command.conditional ? null : expandWord(rest, lookup));
      }
      continue;
    }
    if (name === 'exec' && !command.subshell && !command.conditional) break;
    if (name !== 'ulimit') continue;
    usesUlimit = true;
    const certain = !command.conditional;
    const args: string[] = [];
    let unresolved = false;
    for (const word of command.words.slice(start + 1)) {
      const value = expandWord(word, lookup);
      if (value === null) unresolved = true;
      else args.push(value);
    }
    if (command.subshell) continue; // a subshell's limits die with it
    if (unresolved) {
      events.push({ kind: 'unresolved', fatal: false, certain });
      uncertain = true;
      continue;
    }
    const fatalIfFails = errexit || command.after === '&&';
    const call = parseUlimitCall(dialect, args);
    if (call.error) {
      events.push({ kind: call.error, fatal: fatalIfFails, certain, option: call.errorOption, touches: mentionedLimits(args) });
      if (fatalIfFails && certain) break;
      continue;
    }
    let failed = false;
    // Each setting is one setrlimit call; a failure stops the remaining ones in the same command.
    for (const { option, value } of call.settings) {
      if (option.resource === 'other') continue;
      if (option.resource === 'pipe') {
        events.push({ kind: 'einval-soft-above-hard', resource: 'pipe', fatal: fatalIfFails, certain, option: `-${option.letter}` });
        failed = true;
        break;
      }
      const resource = option.resource;
      const current = limits[resource];
      const parsed = parseLimitValue(dialect, value, current, call.mode.hard && !call.mode.soft);
      if (parsed === 'bad') {
        events.push({ kind: 'bad-number', resource, fatal: fatalIfFails, certain, option: `-${option.letter}` });
        failed = true;
        break;
      }
      const next: Limit = { soft: call.mode.soft ? parsed : current.soft, hard: call.mode.hard ? parsed : current.hard };
      let error: UlimitEventKind | undefined;
      if (resource === 'nofile' && (next.hard > options.nrOpen || next.soft > options.nrOpen)) error = 'eperm-nr-open';
      else if (next.hard > current.hard && options.canRaiseHard !== true) error = 'eperm-hard-raise';
      else if (next.soft > next.hard) error = 'einval-soft-above-hard';
      if (error) {
        const unsure = error === 'eperm-hard-raise' && options.canRaiseHard === 'unknown';
        events.push({ kind: error, resource, fatal: fatalIfFails, certain: certain && !unsure, option: `-${option.letter}`, requested: parsed });
        if (unsure) {
          // Root would succeed: the limit is one of two values.
          uncertain = true;
          continue;
        }
        failed = true;
        break;
      }
      if (certain) {
        limits[resource] = next;
        set[resource] = true;
      } else {
        uncertain = true;
      }
    }
    if (failed && fatalIfFails && certain) break;
  }
  return { dialect, nofile: limits.nofile, nproc: limits.nproc, set, uncertain, events, usesUlimit };
}

// ---- finding the script in a container's command ----

export interface ShellInvocation {
  script: string;
  /** Index into [...command, ...args] of the script argument. */
  argvIndex: number;
  dialects: readonly Dialect[];
  /** The dialect follows from the shell's name or the image; otherwise all three are possible. */
  dialectKnown: boolean;
  errexit: boolean;
}

const DASH_IMAGES = /debian|ubuntu|bookworm|bullseye|buster|trixie|jammy|noble|focal|slim/;
const ASH_IMAGES = /alpine|busybox/;
const BASH_IMAGES = /ubi[0-9]|centos|fedora|rhel|rockylinux|almalinux|amazonlinux|oraclelinux/;

function dialectsFor(shell: string, image: string): { dialects: readonly Dialect[]; known: boolean } {
  if (shell === 'bash') return { dialects: ['bash'], known: true };
  if (shell === 'dash') return { dialects: ['dash'], known: true };
  if (shell === 'ash' || shell === 'busybox') return { dialects: ['ash'], known: true };
  const lower = image.toLowerCase();
  if (ASH_IMAGES.test(lower)) return { dialects: ['ash'], known: true };
  if (BASH_IMAGES.test(lower)) return { dialects: ['bash'], known: true };
  if (DASH_IMAGES.test(lower)) return { dialects: ['dash'], known: true };
  return { dialects: ALL_DIALECTS, known: false };
}

const WRAPPERS = new Set(['env', 'tini', 'dumb-init', 'catatonit']);

/** Finds `sh -c SCRIPT` (or bash/dash/ash/busybox sh, behind env/tini/dumb-init) in argv. */
export function findShellInvocation(argv: readonly string[], image: string): ShellInvocation | undefined {
  if (argv.length < 2) return undefined;
  let index = 0;
  let shell = basename(argv[0] as string);
  // Init wrappers exec their arguments in the same process, so the script's limits are the program's.
  while (WRAPPERS.has(shell) && index + 1 < argv.length) {
    index++;
    while (index < argv.length - 1 && (argv[index] as string).startsWith('-')) index++;
    shell = basename(argv[index] as string);
  }
  if (shell === 'busybox') {
    const applet = argv[index + 1];
    if (applet !== 'sh' && applet !== 'ash') return undefined;
    index++;
  } else if (!['sh', 'bash', 'dash', 'ash'].includes(shell)) {
    return undefined;
  }
  let errexit = false;
  let sawC = false;
  for (index++; index < argv.length; index++) {
    const arg = argv[index] as string;
    if (sawC && !arg.startsWith('-')) break;
    if (arg === '-o' || arg === '+o') {
      index++;
      continue;
    }
    if (arg === '--') {
      index++;
      break;
    }
    if (!/^[-+][a-zA-Z]+$/.test(arg)) break;
    if (arg.startsWith('-') && arg.includes('c')) sawC = true;
    if (arg.startsWith('-') && arg.includes('e')) errexit = true;
  }
  if (!sawC || index >= argv.length) return undefined;
  const { dialects, known } = dialectsFor(shell, image);
  return { script: argv[index] as string, argvIndex: index, dialects, dialectKnown: known, errexit };
}

function basename(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? path : path.slice(slash + 1);
}
