// Folders from prompt names: `/` in a name is a folder separator in the console.

/** A folder and what it holds. */
export interface Folder {
  /** The folder's path with a trailing `/` (`''` for the root). */
  path: string;
  /** Its last segment. */
  name: string;
  folders: Folder[];
  /** How many prompts are in it and below. */
  count: number;
}

/** The folder tree of a list of prompt names, folders sorted by name. */
export function folderTree(names: string[]): Folder {
  const root: Folder = { path: '', name: '', folders: [], count: 0 };
  for (const n of names) {
    root.count++;
    const parts = n.split('/').slice(0, -1);
    let at = root;
    let path = '';
    for (const p of parts) {
      path += p + '/';
      let f = at.folders.find((x) => x.name === p);
      if (!f) {
        f = { path, name: p, folders: [], count: 0 };
        at.folders.push(f);
        at.folders.sort((a, b) => a.name.localeCompare(b.name));
      }
      f.count++;
      at = f;
    }
  }
  return root;
}
