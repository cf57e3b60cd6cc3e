// What a Go binary says about itself in its `.go.buildinfo` section (debug/buildinfo/buildinfo.go):
// the toolchain's version, the main module's path, the DefaultGODEBUG build setting and whether
// go.uber.org/automaxprocs is linked in — the inputs of gomaxprocs.ts. Read from /proc/PID/exe (ptrace
// read: CAP_SYS_PTRACE for other users' processes), cached by the executable's (dev, inode) because
// every replica of a service runs the same file and a parse costs milliseconds.
//
// Reads only the ELF headers, the section header table and the blob itself, never the whole binary.
// From the modinfo text it keeps those four things and drops the rest (build flags such as -ldflags
// can carry paths and values set with -X).
//
// The blob: 14-byte magic "\xff Go buildinf:", pointer size, flags; since Go 1.18 (flags & 2) the
// version and the modinfo follow the 32-byte header inline as uvarint-length-prefixed strings. Before
// 1.18 they are pointers into the data segment; those binaries are reported as Go with an unknown
// version (they predate container-aware GOMAXPROCS anyway).
// The main module's go directive is not recorded; DefaultGODEBUG is what it decided (a go ≤ 1.24
// module gets containermaxprocs=0 from any toolchain), and it is what the runtime applies.
import fs from 'node:fs';
import { isGone } from './proc-file.ts';

export interface GoBuildInfo {
  /** The toolchain that built it, e.g. `go1.26.8`; '' for a binary from before Go 1.18. */
  goVersion: string;
  modulePath?: string;
  /** The `build DefaultGODEBUG=` setting, '' when absent (the toolchain's defaults apply). */
  defaultGODEBUG: string;
  /** Version of go.uber.org/automaxprocs when it is a dependency. */
  automaxprocs?: string;
}

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const HEADER_SIZE = 32;
const ALIGN = 16;
/** Go's linker puts the blob at the start of its section (or near the start of the data segment). */
const SEARCH_BYTES = 64 * 1024;
const MAX_VERSION_BYTES = 1024;
const MAX_MODINFO_BYTES = 1024 * 1024;
const AUTOMAXPROCS = 'go.uber.org/automaxprocs';

class ElfFile {
  private readonly fd: number;
  readonly is64: boolean;
  readonly littleEndian: boolean;

  constructor(fd: number, ident: Buffer) {
    this.fd = fd;
    this.is64 = ident[4] === 2;
    this.littleEndian = ident[5] !== 2;
  }

  read(offset: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buffer, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buffer.subarray(0, done);
  }

  u16(b: Buffer, at: number): number {
    return this.littleEndian ? b.readUInt16LE(at) : b.readUInt16BE(at);
  }

  u32(b: Buffer, at: number): number {
    return this.littleEndian ? b.readUInt32LE(at) : b.readUInt32BE(at);
  }

  /** An address or offset; binaries stay far below 2^53. */
  word(b: Buffer, at: number): number {
    if (!this.is64) return this.u32(b, at);
    return Number(this.littleEndian ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at));
  }
}

interface Region {
  offset: number;
  size: number;
  /** Virtual address of `offset`, for the 16-byte alignment of the magic. */
  address: number;
}

function sectionRegion(elf: ElfFile, header: Buffer): Region | undefined {
  const shoff = elf.word(header, elf.is64 ? 0x28 : 0x20);
  const shentsize = elf.u16(header, elf.is64 ? 0x3a : 0x2e);
  const shnum = elf.u16(header, elf.is64 ? 0x3c : 0x30);
  const shstrndx = elf.u16(header, elf.is64 ? 0x3e : 0x32);
  if (shoff === 0 || shnum === 0 || shstrndx >= shnum || shentsize < (elf.is64 ? 64 : 40)) return undefined;
  const table = elf.read(shoff, shnum * shentsize);
  if (table.length < shnum * shentsize) return undefined;
  const field = (index: number, off64: number, off32: number, wide: boolean): number => {
    const at = index * shentsize + (elf.is64 ? off64 : off32);
    return wide ? elf.word(table, at) : elf.u32(table, at);
  };
  const strtab = { offset: field(shstrndx, 24, 16, true), size: field(shstrndx, 32, 20, true) };
  const names = elf.read(strtab.offset, Math.min(strtab.size, 64 * 1024));
  for (let i = 0; i < shnum; i++) {
    const nameAt = field(i, 0, 0, false);
    const end = names.indexOf(0, nameAt);
    if (end < 0 || names.toString('latin1', nameAt, end) !== '.go.buildinfo') continue;
    return { offset: field(i, 24, 16, true), size: field(i, 32, 20, true), address: field(i, 16, 12, true) };
  }
  return undefined;
}

/** Section headers stripped: the first writable, non-executable PT_LOAD segment (as Go does). */
function segmentRegion(elf: ElfFile, header: Buffer): Region | undefined {
  const phoff = elf.word(header, elf.is64 ? 0x20 : 0x1c);
  const phentsize = elf.u16(header, elf.is64 ? 0x36 : 0x2a);
  const phnum = elf.u16(header, elf.is64 ? 0x38 : 0x2c);
  const table = elf.read(phoff, phnum * phentsize);
  const PT_LOAD = 1;
  const PF_X = 1;
  const PF_W = 2;
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    if (at + phentsize > table.length) break;
    const type = elf.u32(table, at);
    const flags = elf.u32(table, at + (elf.is64 ? 4 : 24));
    if (type !== PT_LOAD || (flags & (PF_X | PF_W)) !== PF_W) continue;
    return {
      offset: elf.word(table, at + (elf.is64 ? 8 : 4)),
      address: elf.word(table, at + (elf.is64 ? 16 : 8)),
      size: elf.word(table, at + (elf.is64 ? 32 : 16)),
    };
  }
  return undefined;
}

function uvarint(b: Buffer, at: number): { value: number; length: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10 && at + i < b.length; i++) {
    const byte = b[at + i] ?? 0;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return { value, length: i + 1 };
    scale *= 128;
  }
  return undefined;
}

/** The inline length-prefixed string at file offset `offset`. */
function readInlineString(elf: ElfFile, offset: number, max: number): { text: string; end: number } | undefined {
  const prefix = elf.read(offset, 10);
  const length = uvarint(prefix, 0);
  if (!length || length.value > max) return undefined;
  const bytes = elf.read(offset + length.length, length.value);
  if (bytes.length < length.value) return undefined;
  return { text: bytes.toString('utf8'), end: offset + length.length + length.value };
}

/** Keeps the module path, DefaultGODEBUG and the automaxprocs dependency; everything else is dropped. */
export function parseModinfo(modinfo: string): Omit<GoBuildInfo, 'goVersion'> {
  // Framed by 16-byte sentinels (cmd/go/internal/modload infoStart/infoEnd) in real binaries.
  let text = modinfo;
  if (text.length >= 33 && text[text.length - 17] === '\n') text = text.slice(16, -16);
  const result: Omit<GoBuildInfo, 'goVersion'> = { defaultGODEBUG: '' };
  for (const line of text.split('\n')) {
    const fields = line.split('\t');
    if (fields[0] === 'path' && fields[1]) result.modulePath = fields[1];
    else if (fields[0] === 'dep' && fields[1] === AUTOMAXPROCS) result.automaxprocs = fields[2] ?? '';
    else if (fields[0] === 'build' && fields[1]?.startsWith('DefaultGODEBUG=')) {
      result.defaultGODEBUG = fields[1].slice('DefaultGODEBUG='.length);
    }
  }
  return result;
}

/** Build info of an open ELF file; null when it is not a Go binary (or not ELF). */
export function readGoBuildInfoFromFd(fd: number): GoBuildInfo | null {
  const probe = Buffer.alloc(64);
  const n = fs.readSync(fd, probe, 0, 64, 0);
  if (n < 52 || probe.toString('latin1', 0, 4) !== '\x7fELF') return null;
  const elf = new ElfFile(fd, probe);
  const region = sectionRegion(elf, probe) ?? segmentRegion(elf, probe);
  if (!region || region.size === 0) return null;
  const data = elf.read(region.offset, Math.min(region.size, SEARCH_BYTES));
  const firstAligned = (ALIGN - (region.address % ALIGN)) % ALIGN;
  for (let at = firstAligned; at + HEADER_SIZE <= data.length; at += ALIGN) {
    if (data[at] !== 0xff || !data.subarray(at, at + MAGIC.length).equals(MAGIC)) continue;
    const flags = data[at + 15] ?? 0;
    if ((flags & 2) === 0) return { goVersion: '', defaultGODEBUG: '' };
    const version = readInlineString(elf, region.offset + at + HEADER_SIZE, MAX_VERSION_BYTES);
    if (!version || version.text === '') return null;
    const modinfo = readInlineString(elf, version.end, MAX_MODINFO_BYTES);
    return { goVersion: version.text, ...parseModinfo(modinfo?.text ?? '') };
  }
  return null;
}

/**
 * Per-executable cache: /proc/PID/exe is opened (which follows the link even to a deleted file),
 * fstat'ed for (dev, inode), and parsed only when that pair is new.
 */
export class GoBuildInfoCache {
  private readonly byInode = new Map<string, GoBuildInfo | null>();
  /** Parses done, for tests and metrics: a second process of the same binary costs none. */
  parses = 0;

  /**
   * The process's Go build info; null when its executable is not Go; undefined when the process is
   * gone or its executable cannot be opened (no ptrace read, kernel threads).
   */
  get(procRoot: string, pid: number): GoBuildInfo | null | undefined {
    let fd: number;
    try {
      fd = fs.openSync(`${procRoot}/${pid}/exe`, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (isGone(error) || code === 'EACCES' || code === 'EPERM') return undefined;
      throw error;
    }
    try {
      const stat = fs.fstatSync(fd, { bigint: true });
      const key = `${stat.dev}:${stat.ino}`;
      const cached = this.byInode.get(key);
      if (cached !== undefined) return cached;
      this.parses++;
      const info = readGoBuildInfoFromFd(fd);
      this.byInode.set(key, info);
      return info;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Executables cached (binaries that are no longer run stay until clear(); there are few per node). */
  get size(): number {
    return this.byInode.size;
  }

  clear(): void {
    this.byInode.clear();
  }
}
