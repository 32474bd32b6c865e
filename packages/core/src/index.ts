export const hello = (x: number): string => `n=${x}`;
