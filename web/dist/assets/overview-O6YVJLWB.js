import{a,b,c,d,e,f}from"./chunk-3SYA2S2H.js";import"./app-MTBZNEM6.js";export{f as Overview,d as SummaryCharts,e as Totals,c as WindowPicker,b as summaryPath,a as windows};
