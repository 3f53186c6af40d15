import { readdirSync, readFileSync } from 'node:fs';
import { buildSchema, Kind, parse, validate, type DocumentNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import * as operations from '../dashboard/operations.js';

const dashboard = new URL('../dashboard/', import.meta.url);
const schema = buildSchema(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8'));

/** Every document the dashboard sends: the string exports of operations.js, by export name. */
const documents = Object.entries(operations).filter((entry): entry is [string, string] => typeof entry[1] === 'string');

/** The dashboard's other modules, which send only what operations.js exports. */
const otherModules = ['', 'views/']
  .flatMap((folder) =>
    readdirSync(new URL(folder, dashboard))
      .filter((file) => file.endsWith('.js'))
      .map((file) => folder + file),
  )
  .filter((file) => file !== 'operations.js');

/**
 * The string and template literals of a module that parse as a GraphQL operation (a `${…}` in a
 * template counts as one field). Found by pattern, not by a JavaScript parser: it may miss an odd
 * literal, but it never reports one that is not a document.
 */
function documentsIn(source: string): string[] {
  const literals = source.match(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g) ?? [];
  return literals.filter((literal) => {
    const text = literal.slice(1, -1).replace(/\$\{[^}]*\}/g, ' __typename ');
    let document: DocumentNode;
    try {
      document = parse(text);
    } catch {
      return false;
    }
    return document.definitions.some((definition) => definition.kind === Kind.OPERATION_DEFINITION);
  });
}

describe("the dashboard's GraphQL operations", () => {
  it('all live in operations.js, each with a name of its own', () => {
    expect(documents.length).toBeGreaterThan(0);
    const names = documents.flatMap(([, document]) =>
      parse(document).definitions.map((definition) => (definition.kind === Kind.OPERATION_DEFINITION ? definition.name?.value : undefined)),
    );
    expect(names).not.toContain(undefined);
    expect(new Set(names).size).toBe(documents.length);
    // The pattern finds the documents where they are (so that finding none elsewhere means something) …
    expect(documentsIn(readFileSync(new URL('operations.js', dashboard), 'utf8'))).toHaveLength(documents.length);
    // … and no other module writes one of its own.
    for (const file of otherModules) expect(documentsIn(readFileSync(new URL(file, dashboard), 'utf8')), file).toEqual([]);
  });

  it.each(documents)('%s is valid against schema.graphql', (_name, document) => {
    expect(validate(schema, parse(document)).map((error) => error.message)).toEqual([]);
  });
});
