import { CeruleanApp } from './ui/shell/cerulean-app';

// One static page; the app routes by location.hash inside it (app/ui/shell/router.ts).
export default function Home() {
  return <CeruleanApp />;
}
