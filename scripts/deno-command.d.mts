export declare const ROOT: string;
export declare const DENO: string;
export declare function denoRunArgs(args?: string[]): string[];
