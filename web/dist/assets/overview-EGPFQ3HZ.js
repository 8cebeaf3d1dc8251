import{a,b,c,d,e,f}from"./chunk-5YTZ4TB2.js";import"./chunk-LRIGPLJW.js";export{f as Overview,d as SummaryCharts,e as Totals,c as WindowPicker,b as summaryPath,a as windows};
