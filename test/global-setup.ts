// Runs once before the suite: nothing to prepare globally yet; each file makes its own database.
export default function setup(): void {}
