// Fills a config template from bench/templates: every {{name}} must have a value, and every
// value given must be used, so a renamed placeholder fails loudly instead of configuring nothing.
import { readFileSync, writeFileSync } from 'node:fs';

export function render(text, vars, what = 'template') {
  const used = new Set();
  const out = text.replace(/\{\{(\w+)\}\}/g, (_, key) => {
    if (!(key in vars)) throw new Error(`${what}: no value for {{${key}}}`);
    used.add(key);
    return String(vars[key]);
  });
  const unused = Object.keys(vars).filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`${what}: values never used: ${unused.join(', ')}`);
  return out;
}

export function renderFile(templatePath, outPath, vars) {
  writeFileSync(outPath, render(readFileSync(templatePath, 'utf8'), vars, templatePath));
  return outPath;
}
