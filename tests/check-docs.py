#!/usr/bin/env python3
"""The docs cover the API and their links lead somewhere.

1. Every function declared GR_API in the public headers (include/grove.h,
   include/grove/*.h) is named in a section heading of docs/*.md (a line
   `#... ` outside code blocks; one heading may name several functions).
2. Every relative link in README.md and docs/*.md (and every ../path in
   their text) names a file inside the repository that exists and, for `file.md#anchor` or `#anchor`, a heading
   of that file with that anchor (GitHub's rule: lower case, punctuation
   dropped, spaces as dashes, -1, -2... for repeats).

Usage: check-docs.py [top]   (default: the repository holding this file)
"""
import os
import re
import sys

TOP = os.path.realpath(sys.argv[1] if len(sys.argv) > 1
                       else os.path.join(os.path.dirname(__file__), '..'))


def api_functions():
    """{name: header} for every GR_API function declaration."""
    found = {}
    inc = os.path.join(TOP, 'include')
    headers = [os.path.join(inc, 'grove.h')]
    sub = os.path.join(inc, 'grove')
    if os.path.isdir(sub):
        headers += sorted(os.path.join(sub, f) for f in os.listdir(sub) if f.endswith('.h'))
    for path in headers:
        text = open(path, encoding='utf-8').read()
        for decl in re.findall(r'^GR_API\b[^;]*;', text, re.M):
            m = re.match(r'GR_API[^(]*?\b([A-Za-z_]\w*)\s*\(', decl)
            if m:
                found[m.group(1)] = os.path.relpath(path, TOP)
    return found


def markdown_lines(path):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for n, line in enumerate(open(path, encoding='utf-8'), 1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line.rstrip('\n')


def headings(path):
    return [line for _, line in markdown_lines(path) if re.match(r'#{1,6} ', line)]


def slug(heading):
    text = re.sub(r'^#+ ', '', heading).strip()
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)  # [text](link) -> text
    text = text.lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path):
    seen = {}
    out = set()
    for h in headings(path):
        s = slug(h)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else '%s-%d' % (s, n))
    text = open(path, encoding='utf-8').read()
    out.update(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    return out


def check_sections(errors):
    docs = os.path.join(TOP, 'docs')
    named = set()
    for f in sorted(os.listdir(docs)):
        if f.endswith('.md'):
            for h in headings(os.path.join(docs, f)):
                named.update(re.findall(r'\b(gr_\w+)', h))
    functions = api_functions()
    if not functions:
        errors.append('no GR_API function found in include/')
    for name, header in sorted(functions.items()):
        if name not in named:
            errors.append('%s (%s) has no section in docs/*.md' % (name, header))
    return len(functions)


def check_links(errors):
    files = [os.path.join(TOP, 'README.md')]
    docs = os.path.join(TOP, 'docs')
    files += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith('.md'))
    count = 0
    for path in files:
        where = os.path.relpath(path, TOP)
        for n, line in markdown_lines(path):
            line = re.sub(r'`[^`]*`', '', line)  # inline code is not a link
            # Links, and paths written out in the text ("(../x/y.md)").
            paths = re.findall(r'\]\(([^)\s]+)\)', line)
            paths += re.findall(r'(?<!\]\()(?<![\w./])((?:\.\./)+[\w./-]*\w)', line)
            for target in paths:
                if re.match(r'[a-z]+:', target):
                    continue  # http:, https:, mailto:
                count += 1
                file, _, anchor = target.partition('#')
                dest = os.path.realpath(os.path.join(os.path.dirname(path), file)) if file else path
                if dest != TOP and not dest.startswith(TOP + os.sep):
                    errors.append('%s:%d: %s leads outside the repository' % (where, n, target))
                elif not os.path.exists(dest):
                    errors.append('%s:%d: %s: no such file' % (where, n, target))
                elif anchor and dest.endswith('.md') and anchor not in anchors(dest):
                    errors.append('%s:%d: %s: no such heading in %s'
                                  % (where, n, target, os.path.relpath(dest, TOP)))
    return count


def main():
    errors = []
    functions = check_sections(errors)
    links = check_links(errors)
    for e in errors:
        print('FAIL ' + e)
    print('%d functions, %d links checked, %d problems' % (functions, links, len(errors)))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
